"""`POST /webhook/alerts`: validate, store, then answer 202 (4xx only for hopeless payloads)."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from sqlalchemy.exc import SQLAlchemyError

from devops_agent.alertmanager import WebhookPayload
from devops_agent.server.deps import Services, services

log = logging.getLogger(__name__)
router = APIRouter()


def describe(exc: ValidationError) -> tuple[str, list[dict[str, str]]]:
    """A one-line message naming the first wrong field, and every error as {loc, msg}."""
    errors = [
        {"loc": ".".join(str(p) for p in err["loc"]) or "body", "msg": err["msg"]}
        for err in exc.errors(include_url=False)
    ]
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{first['loc']}: {first['msg']}{more}", errors


@router.post(
    "/webhook/alerts",
    status_code=202,
    summary="Alertmanager webhook (payload version 4)",
    responses={400: {}, 401: {}, 413: {}, 422: {}, 503: {}},
)
async def webhook_alerts(
    request: Request, svc: Annotated[Services, Depends(services)]
) -> JSONResponse:
    with svc.manager.pressure.request():  # graph runs step back while alerts arrive
        return await _accept(request, svc)


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
