"""`POST /v1/rank`: re-rank the search engine's candidates for one shopper.

Validation is strict (pydantic), rendering is orjson, and the customer's limits and configs come
from the per-process runtime cache: no database query and one signal-store round trip per request.
A dependency outage answers 200 with `"degraded": true`, never a 5xx.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import numpy as np
from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from threadpoolctl import threadpool_limits

from core.errors import FieldError, invalid_request
from core.logs import current_request_id
from core.metrics import observe_exposure, observe_stage
from core.schema import PROBLEM_RESPONSES
from customers import wire
from customers.api import CustomerApi
from customers.auth import KeyStoreUnavailable
from customers.models import Scope
from customers.wire import ProtobufRenderer
from events.queries import normalise_query, shopper_key
from ranking.contracts import RankIn, RankOut
from ranking.engine.pipeline import rank, rank_degraded
from ranking.engine.records import RankInput, RankOutcome
from ranking.learning import rank_log
from ranking.metrics import observe_rank_outcome
from ranking.runtime import CustomerRuntime, RuntimeUnavailable, customer_runtime
from ranking.signals.backend import signal_store

logger = logging.getLogger(__name__)

QUERY_SURFACES = ("search", "autocomplete")
# RankIn's list of CandidateIn (TypedDicts): a candidate that is no object keeps its code.
CANDIDATE_LISTS = frozenset({"items"})
CANDIDATE_RELEVANCE = itemgetter("relevance")

# An API process runs one per core: a numpy (BLAS) call on the rank path must stay on its own
# core, like the model's predict (num_threads=1), rather than contend with the other workers.
# The limit covers the BLAS libraries loaded so far; the environment covers any loaded later
# (SciPy's own OpenBLAS comes only with scipy.linalg), as OpenBLAS and MKL read it when they load.
for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")
threadpool_limits(1, user_api="blas")


def rank_input_errors(body: RankIn, max_candidates: int) -> list[FieldError]:
    """The checks that need the customer's settings or span fields."""
    errors = []
    if body.surface in QUERY_SURFACES and not (body.query or "").strip():
        errors.append(
            FieldError(("query",), "missing", f"A query is required for surface {body.surface}.")
        )
    if len(body.items) > max_candidates:
        errors.append(
            FieldError(
                ("items",),
                "too_long",
                f"{len(body.items)} candidates sent; at most {max_candidates} are allowed.",
            )
        )
    ids = body.item_ids
    if len(set(ids)) < len(ids):  # counted only when there is a duplicate to name
        counts = Counter(ids)
        errors.extend(
            FieldError(("items", index, "id"), "duplicate", f"Item id {item_id!r} appears twice.")
            for index, item_id in enumerate(ids)
            if counts[item_id] > 1
        )
    return errors


def rank_input(body: RankIn) -> RankInput:
    return RankInput(
        surface=body.surface,
        query=normalise_query(body.query),
        category=body.category or "",
        shopper_key=shopper_key(body.user_id, body.session_id),
        item_ids=body.item_ids,
        relevance=_relevance(body),
        context=body.context,
        limit=body.limit,
        explain=body.explain,
    )


def _relevance(body: RankIn) -> np.ndarray:
    """The candidates' relevance as floats, a missing one (None) as NaN."""
    try:  # without a list in between, when every candidate has one
        return np.fromiter(
            map(CANDIDATE_RELEVANCE, body.items), dtype=np.float64, count=len(body.items)
        )
    except TypeError:
        return np.array(list(map(CANDIDATE_RELEVANCE, body.items)), dtype=np.float64)


def render(request_id: str, request: RankInput, outcome: RankOutcome) -> dict[str, Any]:
    # Plain Python ints and floats (tolist) first: numpy scalars one by one cost a millisecond
    # at 1000 candidates. One pass, the id looked up in it (a map of `item_ids.__getitem__`
    # first took longer than the subscript).
    item_ids = request.item_ids
    order = outcome.order.tolist()
    items: list[dict[str, Any]] = [
        {"id": item_ids[index], "position": position, "score": score}
        for index, position, score in zip(
            order, range(1, len(order) + 1), outcome.scores.tolist(), strict=True
        )
    ]
    if outcome.explanations is not None:
        for item, explanation in zip(items, outcome.explanations, strict=True):
            item["explanation"] = explanation.as_dict()
    response: dict[str, Any] = {
        "request_id": request_id,
        "surface": request.surface,
        "degraded": outcome.degraded,
        "ranker": {"config": outcome.config, "model": outcome.model, "variant": outcome.variant},
        "items": items,
    }
    if outcome.degraded:
        response["degraded_reason"] = outcome.degraded_reason
    if request.explain:
        response["removed"] = [
            {"id": request.item_ids[r.index], "rule_id": r.rule_id, "reason": r.reason}
            for r in outcome.removed
        ]
    return response


@dataclass(frozen=True, slots=True)
class Served:
    """What an answered rank request counts once its answer is made (ranking.direct answers
    the common request without Django and counts the same)."""

    customer_id: int
    surface: str
    candidates: int
    shopper_key: str
    outcome: RankOutcome

    def observe(self, started: float) -> None:
        outcome = self.outcome
        observe_rank_outcome(
            customer_id=self.customer_id,
            surface=self.surface,
            started=started,
            candidates=self.candidates,
            outcome=outcome,
        )
        if outcome.variant is not None and self.shopper_key:
            for experiment_id, variant in (
                (outcome.experiment_id, outcome.variant),
                *(outcome.layer_variants or ()),
            ):
                observe_exposure(
                    customer_id=self.customer_id,
                    surface=self.surface,
                    experiment_id=experiment_id or 0,
                    variant=variant,
                )


def ranked_answer(
    customer_id: int, runtime: CustomerRuntime, body: RankIn, request_id: str
) -> tuple[dict[str, Any], Served]:
    """Rank a valid request (rank_input_errors found nothing), log it, and render the answer's
    document; the caller encodes it, then calls `observe` on the second value."""
    ranked = rank_input(body)
    engine_started = time.perf_counter()
    ranker = runtime.config_for(body.surface, ranked.shopper_key)
    outcome = rank(
        ranked,
        ranker,
        signal_store(),
        customer_id,
        published=runtime.signals_published,
        request_id=request_id,
    )
    observe_stage(body.surface, "engine", time.perf_counter() - engine_started)
    for stage, seconds in outcome.stage_seconds:
        observe_stage(body.surface, stage, seconds)
    rank_log.record_outcome(
        customer_id=customer_id, request_id=request_id, request=ranked, outcome=outcome
    )
    document = render(request_id, ranked, outcome)
    return document, Served(customer_id, body.surface, len(body.items), ranked.shopper_key, outcome)


class RankApi(CustomerApi):
    required_scope = Scope.RANK
    renderer_classes = [JSONRenderer, ProtobufRenderer]
    protobuf_request = staticmethod(wire.rank_request_json)
    protobuf_response = staticmethod(wire.rank_response_bytes)
    key_store_down = False

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        try:
            super().initial(request, *args, **kwargs)
        except exceptions.AuthenticationFailed as exc:
            if not isinstance(exc.__cause__, KeyStoreUnavailable):
                raise
            # The database is down and this key is not cached yet: answer in input order
            # rather than fail the shopper's search. Nothing of any customer is read.
            self.key_store_down = True

    @extend_schema(
        operation_id="rank",
        summary="Re-rank candidate items",
        **wire.schema_extension("rank.proto", "RankRequest", "RankResponse"),
        request=RankIn,
        responses={200: RankOut, **PROBLEM_RESPONSES},
        tags=["ranking"],
    )
    def post(self, request: Request) -> HttpResponse:
        self.started = time.perf_counter()
        body = self.read_json(request, RankIn, typed_dict_lists=CANDIDATE_LISTS)
        request_id = current_request_id() or str(uuid.uuid4())
        if self.key_store_down:
            return self._degraded(request_id, body, "key_store")
        try:
            runtime = customer_runtime(self.customer_id)
        except RuntimeUnavailable:
            logger.warning("ranking runtime unavailable for customer %s", self.customer_id)
            return self._degraded(request_id, body, "runtime")
        errors = rank_input_errors(body, runtime.max_candidates)
        if errors:
            raise invalid_request(errors)
        document, served = ranked_answer(self.customer_id, runtime, body, request_id)
        response = self.answer(request, document)
        response["X-Request-ID"] = request_id
        served.observe(self.started)
        return response

    def _degraded(self, request_id: str, body: RankIn, reason: str) -> HttpResponse:
        errors = [e for e in rank_input_errors(body, len(body.items)) if e.code != "too_long"]
        if errors:
            raise invalid_request(errors)
        ranked = rank_input(body)
        outcome = rank_degraded(ranked, "default", reason)
        response = self.answer(self.request, render(request_id, ranked, outcome))
        observe_rank_outcome(
            customer_id=None if self.key_store_down else self.customer_id,
            surface=body.surface,
            started=self.started,
            candidates=len(body.items),
            outcome=outcome,
            degraded_reason=reason,
        )
        return response
