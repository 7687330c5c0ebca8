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


ACCEPTED = {
    "type": "object",
    "required": ["runs", "ignored"],
    "properties": {
        "runs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["run_id", "service", "deduplicated"],
                "properties": {
                    "run_id": {"type": "string"},
                    "service": {"type": "string"},
                    "deduplicated": {"type": "boolean"},
                },
            },
        },
        "ignored": {"type": "integer"},
    },
}


def _json(description: str, name: str) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{name}"}
    return {"description": description, "content": {"application/json": {"schema": ref}}}


def _webhook(schema: dict[str, Any], schemas: dict[str, Any]) -> None:
    """The webhook is a plain ASGI route (api_webhook.py), which FastAPI does not document, and it
    reads its body itself (to answer bad JSON with a clear 400): say what it takes and answers."""
    body = WebhookPayload.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(body.pop("$defs", {}))
    schemas["WebhookPayload"] = body
    schemas["WebhookAccepted"] = ACCEPTED
    schema.setdefault("paths", {})[WEBHOOK_PATH] = {
        "post": {
            "summary": "Alertmanager webhook (payload version 4)",
            "operationId": "webhook_alerts",
            "requestBody": {"required": True, "content": _json("", "WebhookPayload")["content"]},
            "responses": {
                "202": _json("Stored (committed); the runs started or joined", "WebhookAccepted"),
                "400": _error("The body is not JSON"),
                "413": _error("The body is larger than the limit (1 MiB)"),
                "422": _json(
                    "The payload has the wrong shape: the field is named", "HTTPValidationError"
                ),
                "503": _error("The alerts could not be stored; Alertmanager retries"),
            },
        }
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
        _webhook(schema, schemas)
        for path, operations in schema.get("paths", {}).items():
            if path in OPEN_PATHS:
                continue
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for code, description in COMMON.items():
                    responses.setdefault(code, _error(description))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
