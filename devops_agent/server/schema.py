"""Make /openapi.json tell the truth about error answers.

The app answers validation errors as `{"detail": "<field>: <problem>", "errors": [{loc, msg}]}`
(one readable line first), not FastAPI's default list, and every route but /health may answer
401 (no or wrong token) and 429 (rate limit, with Retry-After). Clients and schemathesis read
the schema, so it must say so.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from devops_agent.alertmanager import WebhookPayload

ERROR = {
    "type": "object",
    "required": ["detail"],
    "properties": {"detail": {"type": "string"}},
}
VALIDATION_ERROR = {
    "type": "object",
    "required": ["detail"],
    "properties": {
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"loc": {"type": "string"}, "msg": {"type": "string"}},
            },
        },
    },
}
OPEN_PATHS = frozenset({"/health"})
WEBHOOK_PATH = "/webhook/alerts"
COMMON = {
    "401": "No or wrong bearer token (the Authorization header only)",
    "429": "Too many requests from this client; retry after Retry-After seconds",
}


def _error(description: str) -> dict[str, Any]:
    ref = {"$ref": "#/components/schemas/Error"}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def _webhook_body(schema: dict[str, Any], schemas: dict[str, Any]) -> None:
    """The webhook reads its body itself (to answer bad JSON with a clear 400): say what it is."""
    post = schema.get("paths", {}).get(WEBHOOK_PATH, {}).get("post")
    if post is None:
        return
    body = WebhookPayload.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(body.pop("$defs", {}))
    schemas["WebhookPayload"] = body
    post["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/WebhookPayload"}}
        },
    }


def document_errors(app: FastAPI) -> None:
    """Patch the generated schema once, the first time it is built."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schemas = schema.setdefault("components", {}).setdefault("schemas", {})
        schemas["Error"] = ERROR
        schemas["HTTPValidationError"] = VALIDATION_ERROR
        _webhook_body(schema, schemas)
        for path, operations in schema.get("paths", {}).items():
            if path in OPEN_PATHS:
                continue
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for code, description in COMMON.items():
                    responses.setdefault(code, _error(description))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
