"""`POST /webhook/alerts`: validate, store, then answer 202 (4xx only for hopeless payloads)."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from devops_agent.alertmanager import WebhookPayload
from devops_agent.server.auth import WEBHOOK_PATH
from devops_agent.server.deps import Services, services

log = logging.getLogger(__name__)


def describe(exc: ValidationError) -> tuple[str, list[dict[str, str]]]:
    """A one-line message naming the first wrong field, and every error as {loc, msg}."""
    errors = [
        {"loc": ".".join(str(p) for p in err["loc"]) or "body", "msg": err["msg"]}
        for err in exc.errors(include_url=False)
    ]
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{first['loc']}: {first['msg']}{more}", errors


class WebhookEndpoint:
    """The endpoint as a plain ASGI app of the router, not a FastAPI route: FastAPI's work per
    request (its route wrappers, solving dependencies) was a quarter of intake's time under load.
    schema.py documents it in /openapi.json.

    While it runs, from the body's first byte to the answer's last, the request is in flight for
    the run manager's Pressure: graph runs step back while alerts arrive.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = route  # as FastAPI's routes do: HttpMetricsMiddleware labels by it
        request = Request(scope, receive)
        svc = await services(request)
        with svc.manager.pressure.request():
            response = await _accept(request, svc)
            await response(scope, receive, send)


route = Route(WEBHOOK_PATH, WebhookEndpoint(), methods=["POST"], name="webhook_alerts")


async def _accept(request: Request, svc: Services) -> JSONResponse:
    body = await request.body()
    try:
        data: Any = json.loads(body)
    except (ValueError, RecursionError) as exc:  # also numbers of 4300+ digits, deep nesting
        reason = (
            exc.msg
            if isinstance(exc, json.JSONDecodeError)
            else "not UTF-8"
            if isinstance(exc, UnicodeDecodeError)
            else "nested too deeply"
            if isinstance(exc, RecursionError)
            else "a number is too long"
        )
        return JSONResponse({"detail": f"body is not JSON: {reason}"}, status_code=400)
    try:
        payload = WebhookPayload.model_validate(data)
    except ValidationError as exc:
        message, errors = describe(exc)
        return JSONResponse({"detail": message, "errors": errors}, status_code=422)
    try:
        accepted = await svc.intake.accept(payload)
    except (SQLAlchemyError, OSError) as exc:
        log.error("could not store %d alert(s): %s", len(payload.alerts), type(exc).__name__)
        return JSONResponse({"detail": "could not store the alerts; retry later"}, status_code=503)
    return JSONResponse(accepted, status_code=202)
