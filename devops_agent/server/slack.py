"""`POST /slack/interactions` (issue 16.1): the clicks on a request's Approve and Reject.

Slack's signature is verified first (SLACK_SIGNING_SECRET; `v0` HMAC-SHA256 of the timestamp
and the raw body; a timestamp more than five minutes away is a replay), with slack_sdk's
SignatureVerifier. The Slack user is then mapped to a user of the agent (`devops-agent users add NAME --slack-id U...`)
who must hold the approver role, and the decision goes the way of `POST /runs/{id}/resume`
(RunManager.decide, with the button's request_id: a click on a request that is no longer
current changes nothing). The message then shows who decided. Slack wants a 200 for every
click it delivered; a refusal is told to the one who clicked (an ephemeral message) and
answered `{"ok": false, "reason": ...}`; a request that is not Slack's (or any, when Slack is
not configured) is a 401.
"""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from slack_sdk.signature import SignatureVerifier

from devops_agent.memory.runs import AWAITING
from devops_agent.memory.slack_messages import Posted
from devops_agent.notify import approval_notice
from devops_agent.orchestration.slack import APPROVE, REJECT, SlackChannel
from devops_agent.server.auth import Authenticator
from devops_agent.server.deps import Services, services

log = logging.getLogger(__name__)
router = APIRouter()
Svc = Annotated[Services, Depends(services)]
PATH = "/slack/interactions"


class SlackAnswer(BaseModel):
    ok: bool
    reason: str | None = None
    detail: str | None = None


def _answer(ok: bool, reason: str | None = None, detail: str | None = None) -> JSONResponse:
    return JSONResponse(SlackAnswer(ok=ok, reason=reason, detail=detail).model_dump())


class Click(BaseModel):
    """The part of a block_actions payload that is used."""

    user: str
    action: str
    run_id: str
    request_id: str
    channel: str | None
    message_ts: str | None


def parse_click(body: bytes) -> Click | str:
    """The click, or why the payload is not one we act on."""
    try:
        form = parse_qs(body.decode("utf-8"), strict_parsing=True)
        payload = json.loads(form["payload"][0])
        if payload.get("type") != "block_actions":
            return "not a button click"
        action = payload["actions"][0]
        if action.get("action_id") not in (APPROVE, REJECT):
            return "not a decision"
        value = json.loads(action["value"])
        container = payload.get("container") or {}
        channel = (payload.get("channel") or {}).get("id") or container.get("channel_id")
        return Click(
            user=str(payload["user"]["id"])[:64],
            action=str(action["action_id"]),
            run_id=str(value["run_id"])[:64],
            request_id=str(value.get("request_id") or "")[:64],
            channel=str(channel)[:64] if channel else None,
            message_ts=str(container.get("message_ts") or "")[:32] or None,
        )
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, UnicodeDecodeError):
        return "malformed payload"


@router.post(
    PATH,
    summary="Slack's interactivity requests: Approve and Reject clicks (signed by Slack)",
    response_model=SlackAnswer,
    responses={401: {}, 400: {}},
)
async def interactions(request: Request, svc: Svc) -> JSONResponse:
    settings = svc.settings
    slack: SlackChannel | None = svc.manager.slack
    # Without a signing secret nothing can be Slack's; a failure says nothing about why.
    if settings.slack_signing_secret is None or slack is None:
        return JSONResponse({"detail": "unauthorized"}, status_code=401)
    body = await request.body()
    verifier = SignatureVerifier(settings.slack_signing_secret.get_secret_value())
    if not verifier.is_valid_request(body, dict(request.headers)):
        log.warning("refused a Slack interaction: bad signature or timestamp")
        return JSONResponse({"detail": "unauthorized"}, status_code=401)
    click = parse_click(body)
    if isinstance(click, str):
        status = 400 if click == "malformed payload" else 200
        return JSONResponse(SlackAnswer(ok=False, detail=click).model_dump(), status_code=status)
    return await _decide(svc, slack, request.app.state.authenticator, click)


async def _decide(
    svc: Services, slack: SlackChannel, authenticator: Authenticator, click: Click
) -> Any:
    async def refuse(reason: str, text: str) -> JSONResponse:
        log.info("Slack click by %s on run %s refused: %s", click.user, click.run_id, reason)
        if click.channel:
            await slack.tell(click.channel, click.user, text)
        return _answer(False, reason, text)

    who = await authenticator.by_slack_id(click.user)
    if who is None:
        return await refuse("unknown_user", "You are not a user of the agent; ask an admin.")
    if not who.may("approver"):
        return await refuse("forbidden", f"{who.name}: deciding needs the approver role.")
    row = await svc.repo.get(click.run_id)
    if row is None:
        return await refuse("unknown_run", f"Run {click.run_id} does not exist.")
    request = dict(row.approval_request or {})
    decision = {
        "decision": click.action,
        "approver": who.name,
        "comment": "from Slack",
        "request_id": click.request_id,
    }
    claimed = await svc.manager.decide(click.run_id, decision)
    if claimed.stale or (not claimed and row.status == AWAITING):
        return await refuse("stale_request", "This request is no longer current.")
    if claimed.late:
        return await refuse("expired", "This request waited past its deadline: it expired.")
    if not claimed:
        return await refuse("stale_request", f"Run {click.run_id} is not waiting any more.")
    posted = (
        Posted(click.channel, click.message_ts)
        if click.channel and click.message_ts
        else await slack.messages.of_request(click.run_id, click.request_id)
    )
    if posted is not None:
        notice = approval_notice(request, "")
        verb = "Approved" if click.action == APPROVE else "Rejected"
        await slack.decided(notice, posted, f"{verb} by {who.name} (Slack <@{click.user}>)")
    return _answer(True, None, f"{click.action} by {who.name}")
