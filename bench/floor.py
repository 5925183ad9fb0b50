"""The floor: the least work any service must do to answer a rank request, as a bare WSGI app.

It parses the JSON body, reads the candidates' features with one Redis MGET of packed float32
vectors (one key per item, written by bench/rank.py from the features the service logged for
it), scores them with the same compiled trees as the service's active model (the same shared
library, the same feature count), sorts, and writes the ids and scores with orjson. No rules, no
personalisation, no logging, no validation beyond the JSON parse. bench/rank.py serves it with
the service's own gunicorn config and worker count and measures it in rounds alternated with
/v1/rank: the service's figures are judged as ratios to it (docs/performance.md).

    FLOOR_REDIS_URL=redis://127.0.0.1:6379/0 FLOOR_PREFIX=rwbench:floor: FLOOR_WIDTH=28 \\
    FLOOR_MODEL_LIBRARY=/tmp/.../model.so gunicorn --config platform/gunicorn.conf.py floor:app
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import orjson
import redis

REDIS = redis.Redis.from_url(os.environ["FLOOR_REDIS_URL"])
PREFIX = os.environ["FLOOR_PREFIX"]
WIDTH = int(os.environ["FLOOR_WIDTH"])
MISSING = bytes(4 * WIDTH)
_predict = ctypes.CDLL(os.environ["FLOOR_MODEL_LIBRARY"]).rankwell_predict
_predict.restype = None
_predict.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    ids = [item["id"] for item in orjson.loads(body)["items"]]
    values = REDIS.mget([PREFIX + item_id for item_id in ids])
    packed = b"".join(value or MISSING for value in values)
    rows = np.frombuffer(packed, dtype=np.float32).reshape(len(ids), WIDTH)
    scores = np.empty(len(ids), dtype=np.float64)
    _predict(rows.ctypes.data, len(ids), scores.ctypes.data)
    order = np.argsort(-scores, kind="stable").tolist()
    listed = scores.tolist()
    answer = orjson.dumps({"items": [{"id": ids[i], "score": listed[i]} for i in order]})
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))]
    )
    return [answer]
