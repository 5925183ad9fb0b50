"""The floor: the least work any service must do for a request, as a bare WSGI app.

/v1/rank: it parses the JSON body, reads the candidates' features with one Redis MGET of packed
float32 vectors (one key per item, written by bench/rank.py from the features the service logged for
it), scores them with the same compiled trees as the service's active model (the same shared
library, the same feature count), sorts, and writes the ids and scores with orjson. No rules, no
personalisation, no logging, no validation beyond the JSON parse.

/v1/events: it parses the JSON batch and writes the rows the service would write for it (an
impression one per item shown) with one COPY into `floor_event`, a table made like the service's
event table (the same columns, constraints and indexes), and commits. No validation, no
duplicate check, no profile update, no metrics.

bench/rank.py serves it with the service's own gunicorn config and worker count and measures it
in rounds alternated with the service: the service's figures are judged as ratios to it
(docs/performance.md). FLOOR_WIDTH is the feature schema's width, len(FEATURES) of
ranking/signals/schema.py (28 today; bench/rank.py passes it).

    FLOOR_REDIS_URL=redis://127.0.0.1:6379/0 FLOOR_PREFIX=rwbench:floor: FLOOR_WIDTH=28 \\
    FLOOR_MODEL_LIBRARY=/tmp/.../model.so FLOOR_DATABASE_URL=postgres://... FLOOR_CUSTOMER_ID=1 \\
    gunicorn --config platform/gunicorn.conf.py --pythonpath bench floor:app
"""

from __future__ import annotations

import ctypes
import os
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
import psycopg
import redis

REDIS = redis.Redis.from_url(os.environ["FLOOR_REDIS_URL"])
PREFIX = os.environ["FLOOR_PREFIX"]
WIDTH = int(os.environ["FLOOR_WIDTH"])
MISSING = bytes(4 * WIDTH)
_predict = ctypes.CDLL(os.environ["FLOOR_MODEL_LIBRARY"]).rankwell_predict
_predict.restype = None
_predict.argtypes = [ctypes.c_void_p, ctypes.c_long, ctypes.c_void_p]


CUSTOMER = int(os.environ["FLOOR_CUSTOMER_ID"])
COLUMNS = (
    "customer_id, event_id, ordinal, type, item_id, position, occurred_at, received_at, "
    "user_id, session_id, request_id, request_attributed, surface, query, quantity, price, "
    "revenue"
)
_local = threading.local()


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    if environ["PATH_INFO"] == "/v1/events":
        return events(body, start_response)
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


def events(body: bytes, start_response: Callable[..., Any]) -> Iterable[bytes]:
    batch = orjson.loads(body)["events"]
    now = datetime.now(UTC)
    rows = []
    for e in batch:
        quantity, price = e.get("quantity", 1), e.get("price")
        revenue = price * quantity if e["type"] == "purchase" else 0.0
        rest = (
            e.get("user_id", ""),
            e.get("session_id", ""),
            e.get("request_id", ""),
            False,
            e.get("surface", ""),
            e.get("query", ""),
            quantity,
            price,
            revenue,
        )
        for ordinal, item_id in enumerate(e.get("items") or (e["item_id"],)):
            rows.append(
                (
                    CUSTOMER,
                    e["event_id"],
                    ordinal,
                    e["type"],
                    item_id,
                    e.get("position"),
                    e["timestamp"],
                    now,
                    *rest,
                )
            )
    connection = getattr(_local, "connection", None)
    if connection is None:
        connection = _local.connection = psycopg.connect(os.environ["FLOOR_DATABASE_URL"])
    with (
        connection.cursor() as cursor,
        cursor.copy(f"COPY floor_event ({COLUMNS}) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)
    connection.commit()
    answer = orjson.dumps({"accepted": len(batch), "duplicates": 0})
    start_response(
        "202 Accepted",
        [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))],
    )
    return [answer]
