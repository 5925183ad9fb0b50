"""How the OpenAPI schema describes API-key authentication (loaded by customers.apps)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "customers.auth.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key of one customer, `Authorization: Bearer rwk_...`; "
            "its scopes (rank, events, catalog, rules) decide what it may call.",
        }
