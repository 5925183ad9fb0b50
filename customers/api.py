"""The base class of every /v1 endpoint: the customer comes from the API key, never the body.

Subclasses name the scope they need and the tenant-owned model they serve; `get_queryset()`
is always filtered to the calling customer, so no subclass filters by customer by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import orjson
import pydantic
from django.core.exceptions import RequestDataTooBig
from django.db import models
from django.http import HttpResponse
from django.http.request import RawPostDataException
from rest_framework.request import Request
from rest_framework.views import APIView

from core.errors import (
    BodyTooLarge,
    MalformedJson,
    UnsupportedMediaType,
    invalid_request,
    nul_errors,
    raise_for_pydantic,
)
from core.middleware import take_work_slot
from core.negotiation import JsonFirstNegotiation
from customers.auth import ApiPrincipal
from customers.wire import PROTOBUF, ProtobufRenderer, is_protobuf

ContractT = TypeVar("ContractT", bound=pydantic.BaseModel)
NUL_ESCAPE = b"\\u0000"


def json_response(data: Any, status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(data), status=status, content_type="application/json")


def is_json_content_type(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


class CustomerApi(APIView):
    content_negotiation_class = JsonFirstNegotiation
    required_scope: str | None = None
    model: type[models.Model] | None = None
    # An API that also takes protobuf (customers.wire): the decoder of its request message into
    # the JSON contract's document.
    protobuf_request: Callable[[bytes], bytes] | None = None
    json_body = b""  # the body read_json validated, as JSON (decoded from protobuf if need be)

    # Its encoder of the JSON answer's document as the response message.
    protobuf_response: Callable[[dict[str, Any]], bytes] | None = None

    def answer(self, request: Request, document: dict[str, Any], status: int = 200) -> HttpResponse:
        """The answer in the encoding content negotiation chose (ProtobufRenderer: protobuf)."""
        if self.protobuf_response is not None and isinstance(
            getattr(request, "accepted_renderer", None), ProtobufRenderer
        ):
            return HttpResponse(
                self.protobuf_response(document), status=status, content_type=PROTOBUF
            )
        return json_response(document, status)

    @property
    def principal(self) -> ApiPrincipal:
        principal = self.request.user
        assert isinstance(principal, ApiPrincipal)
        return principal

    @property
    def customer_id(self) -> int:
        return self.principal.customer_id

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # Path and query parameters are text too: a NUL in them is refused, naming the parameter.
        errors = nul_errors({**kwargs, **request.query_params.dict()})
        if errors:
            raise invalid_request(errors)

    def get_queryset(self) -> models.QuerySet[Any]:
        assert self.model is not None, f"{type(self).__name__} names no model"
        return self.model._default_manager.for_customer(self.customer_id)  # type: ignore[attr-defined]

    def read_json(
        self,
        request: Request,
        contract: type[ContractT],
        union_tags: frozenset[str] = frozenset(),
        typed_dict_lists: frozenset[str] = frozenset(),
    ) -> ContractT:
        """Validate the body against a pydantic contract; errors name each field (see
        core.errors.errors_from_pydantic for `union_tags` and `typed_dict_lists`)."""
        content_type = request.META.get("CONTENT_TYPE", "")
        protobuf = self.protobuf_request is not None and is_protobuf(content_type)
        if not protobuf and not is_json_content_type(content_type):
            sent = f"not {content_type}" if content_type else "and name it in Content-Type"
            also = " (or application/x-protobuf)" if self.protobuf_request is not None else ""
            raise UnsupportedMediaType(f"Send the body as application/json{also}, {sent}.")
        try:
            body = request._request.body
        except RequestDataTooBig as exc:
            raise BodyTooLarge("The body exceeds the size limit of this API.") from exc
        except RawPostDataException as exc:  # the stream was read already: a programming error
            raise RuntimeError("request body read twice") from exc
        if not protobuf and not body.strip():
            raise MalformedJson("The body is empty; send a JSON object.")
        take_work_slot(request._request)
        if protobuf:
            assert self.protobuf_request is not None
            body = self.protobuf_request(body)
        self.json_body = body
        if NUL_ESCAPE in body:  # JSON can carry NUL only escaped: the common body skips the walk
            try:
                errors = nul_errors(orjson.loads(body))
            except orjson.JSONDecodeError:
                errors = []  # the contract's parse names what is malformed
            if errors:
                raise invalid_request(errors)
        try:
            return contract.model_validate_json(body)
        except pydantic.ValidationError as exc:
            raise_for_pydantic(exc, union_tags, typed_dict_lists)
            raise  # unreachable: raise_for_pydantic always raises
