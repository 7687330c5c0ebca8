"""Notices to Slack (issue 16.1), self-hosted: the bot posts each notice of the outbox to
SLACK_CHANNEL with Block Kit (an approval request with its diagnosis, plan, why and deadline,
and the buttons Approve, Reject and Open in console), through slack_sdk's WebClient (its
`base_url` is SLACK_API_URL). The message's ts is kept under the notice's delivery id: a
repeated delivery updates that message (chat.update) instead of posting a second one."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from devops_agent.config import Settings
from devops_agent.memory.slack_messages import Posted, SlackMessages
from devops_agent.redact import redact, redact_data

log = logging.getLogger(__name__)
APPROVE, REJECT, OPEN = "approve", "reject", "open_console"
TIMEOUT = 10


def _plain(text: str, limit: int = 2900) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": redact(text)[:limit]}


def _steps(notice: dict[str, Any]) -> str:
    steps = notice.get("steps") or []
    lines = [
        f"• `{s.get('operation')}` {s.get('target')} ({s.get('risk')} risk)"
        for s in steps
        if isinstance(s, dict)
    ]
    return "\n".join(lines) or "the plan"


def approval_blocks(notice: dict[str, Any], console_url: str | None) -> list[dict[str, Any]]:
    """Block Kit for an approval request; the buttons carry the run and request ids."""
    value = json.dumps({"run_id": notice.get("run_id"), "request_id": notice.get("request_id")})
    buttons: list[dict[str, Any]] = [
        {
            "type": "button",
            "action_id": APPROVE,
            "style": "primary",
            "text": {"type": "plain_text", "text": "Approve"},
            "value": value,
        },
        {
            "type": "button",
            "action_id": REJECT,
            "style": "danger",
            "text": {"type": "plain_text", "text": "Reject"},
            "value": value,
        },
    ]
    if console_url:
        buttons.append(
            {
                "type": "button",
                "action_id": OPEN,
                "text": {"type": "plain_text", "text": "Open in console"},
                "url": console_url,
            }
        )
    return [
        {
            "type": "section",
            "text": _plain(f"*Approval needed: {notice.get('service') or 'unknown service'}*"),
        },
        {
            "type": "section",
            "fields": [
                _plain(f"*Diagnosis*\n{notice.get('category')}: {notice.get('root_cause') or ''}"),
                _plain(f"*Deadline*\n{notice.get('deadline') or 'none'}"),
            ],
        },
        {"type": "section", "text": _plain(f"*Plan*\n{_steps(notice)}")},
        {
            "type": "section",
            "text": _plain(f"*Why*\n{notice.get('why') or ''} ({notice.get('reason') or ''})"),
        },
        {"type": "actions", "block_id": "decision", "elements": buttons},
    ]


def decided_blocks(notice: dict[str, Any], line: str) -> list[dict[str, Any]]:
    """The request's message once decided: its content without buttons, and who decided."""
    kept = [b for b in approval_blocks(notice, None) if b["type"] != "actions"]
    return [*kept, {"type": "context", "elements": [_plain(line)]}]


class SlackChannel:
    """Posts and updates messages in SLACK_CHANNEL, remembering each notice's message."""

    def __init__(self, settings: Settings, messages: SlackMessages, public_url: str) -> None:
        assert settings.slack_bot_token is not None and settings.slack_channel is not None
        self.client = WebClient(
            token=settings.slack_bot_token.get_secret_value(),
            base_url=settings.slack_api_url,
            timeout=TIMEOUT,
        )
        self.channel = settings.slack_channel
        self.messages = messages
        self.public_url = public_url.rstrip("/")

    def console_url(self, run_id: str) -> str:
        return f"{self.public_url}/ui/runs/{run_id}"

    async def deliver(self, notice: dict[str, Any]) -> str | None:
        """Post (or, when posted before, update) one notice; None when Slack took it."""
        notice = redact_data(notice)
        delivery_id = str(notice.get("delivery_id") or "")
        run_id = str(notice.get("run_id") or "")
        if notice.get("kind") == "approval_request":
            blocks = approval_blocks(notice, self.console_url(run_id))
        else:
            blocks = [{"type": "section", "text": _plain(str(notice.get("text") or ""))}]
        text = str(notice.get("text") or "devops-agent")[:3000]
        try:
            earlier = await self.messages.of_delivery(delivery_id)
            if earlier is not None:
                await self._call(
                    "chat_update", channel=earlier.channel, ts=earlier.ts, text=text, blocks=blocks
                )
                return None
            answer = await self._call(
                "chat_postMessage", channel=self.channel, text=text, blocks=blocks
            )
            posted = Posted(str(answer.get("channel") or self.channel), str(answer["ts"]))
            request_id = notice.get("request_id")
            await self.messages.record(delivery_id, run_id, request_id and str(request_id), posted)
        except (SlackApiError, SlackClientError, OSError, KeyError) as exc:
            return _problem(exc)
        return None

    async def decided(self, notice: dict[str, Any], posted: Posted, line: str) -> None:
        """Show who decided on the request's message (its buttons gone)."""
        try:
            await self._call(
                "chat_update",
                channel=posted.channel,
                ts=posted.ts,
                text=redact(line),
                blocks=decided_blocks(redact_data(notice), line),
            )
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("could not update the Slack message: %s", _problem(exc))

    async def tell(self, channel: str, user: str, text: str) -> None:
        """An ephemeral line to the one who clicked (a refusal, and why)."""
        try:
            await self._call("chat_postEphemeral", channel=channel, user=user, text=redact(text))
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("could not answer in Slack: %s", _problem(exc))

    async def _call(self, method: str, **kwargs: Any) -> Any:
        fn = getattr(self.client, method)
        return await asyncio.to_thread(fn, **kwargs)


def _problem(exc: Exception) -> str:
    if isinstance(exc, SlackApiError):
        return f"Slack answered {exc.response.get('error', 'an error')}"
    return type(exc).__name__
