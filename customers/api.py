"""The base class of every /v1 endpoint: the customer comes from the API key, never the body.

Subclasses name the scope they need and the tenant-owned model they serve; `get_queryset()`
is always filtered to the calling customer, so no subclass filters by customer by hand.
"""

from __future__ import annotations

from typing import Any, TypeVar

import orjson
import pydantic
from django.core.exceptions import RequestDataTooBig
from django.db import models
from django.http import HttpResponse
from django.http.request import RawPostDataException
from rest_framework.request import Request
from rest_framework.views import APIView

from config.middleware import take_work_slot
from config.problems import (
    BodyTooLarge,
    MalformedJson,
    UnsupportedMediaType,
    invalid_request,
    nul_errors,
    raise_for_pydantic,
)
from customers.auth import ApiPrincipal

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
    required_scope: str | None = None
    model: type[models.Model] | None = None

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
        return self.model._default_manager.filter(customer_id=self.customer_id)

    def read_json(
        self,
        request: Request,
        contract: type[ContractT],
        union_tags: frozenset[str] = frozenset(),
    ) -> ContractT:
        """Validate the body against a pydantic contract; errors name each field."""
        content_type = request.META.get("CONTENT_TYPE", "")
        if not is_json_content_type(content_type):
            sent = f"not {content_type}" if content_type else "and name it in Content-Type"
            raise UnsupportedMediaType(f"Send the body as application/json, {sent}.")
        try:
            body = request._request.body
        except RequestDataTooBig as exc:
            raise BodyTooLarge("The body exceeds the size limit of this API.") from exc
        except RawPostDataException as exc:  # the stream was read already: a programming error
            raise RuntimeError("request body read twice") from exc
        if not body.strip():
            raise MalformedJson("The body is empty; send a JSON object.")
        take_work_slot(request._request)
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
            raise_for_pydantic(exc, union_tags)
            raise  # unreachable: raise_for_pydantic always raises
