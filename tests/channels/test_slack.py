"""Slack approvals (issue 16.1, 16.4) against a local server that speaks the Web API at the
wire, with interaction payloads signed as Slack signs them: the approval request is posted with
Block Kit, a repeated delivery (the sender killed after posting) updates the same message, a
valid click resolves a real broken container and the message shows who decided; a forged
signature, a replay, an unknown Slack user, a viewer and a stale request are each refused and
change nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import docker
import httpx
import pytest

from tests.channels.fake_slack import FakeSlack, click_body, signed
from tests.server.conftest import Server, alert_payload
from tests.server.test_durability import Receiver
from tests.support.containers import Lab, container_state, wait_for
from tests.support.secrets import SECRETS

pytestmark = pytest.mark.docker
BOT_TOKEN = "xoxb-test-bot-token-1234567890"
SECRET = "slack-signing-secret-0123456789abcdef"
CHANNEL = "C0APPROVALS"


def post_click(srv: Server, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(
        f"{srv.url}/slack/interactions", content=body, headers=headers, trust_env=False, timeout=30
    )


def texts(blocks: list[dict[str, Any]]) -> str:
    return json.dumps(blocks)


def test_slack_approval_from_post_to_click(
    make_server: Callable[..., Server], lab: Lab, docker_client: docker.DockerClient
) -> None:
    slack = FakeSlack(BOT_TOKEN)
    webhook = Receiver()
    app = lab.crashed()
    env = {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_CHANNEL": CHANNEL,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
        "PUBLIC_URL": "https://agent.example.com",
        "NOTIFY_WEBHOOK_URL": webhook.url,
        "DEVOPS_AGENT_FAULTS": "after_deliver=kill",
    }
    srv = make_server(**env)
    srv.add_user("ana", "approver", "--slack-id", "UANA")
    srv.add_user("vic", "viewer", "--slack-id", "UVIC")
    run_id = srv.webhook(alert_payload(app.name)).json()["runs"][0]["run_id"]
    assert srv.proc is not None
    srv.proc.wait(timeout=120)  # killed after posting, before the notice was marked delivered
    srv.extra_env.pop("DEVOPS_AGENT_FAULTS")
    srv.start()
    wait_for(lambda: slack.of("chat.update") != [], timeout=60, what="the repeated delivery")
    wait_for(lambda: srv.get("/status").json()["notifications"]["backlog"] == 0, timeout=60)

    # One message, posted once, then updated in place by the repeat.
    (posted,) = slack.of("chat.postMessage")
    assert posted["channel"] == CHANNEL
    blocks = texts(posted["blocks"])
    for shown in ("Approval needed", app.name, "crash", "restart_service", "Deadline", "Why"):
        assert shown in blocks, shown
    actions = next(b for b in posted["blocks"] if b["type"] == "actions")["elements"]
    assert [a["text"]["text"] for a in actions] == ["Approve", "Reject", "Open in console"]
    assert actions[2]["url"] == f"https://agent.example.com/ui/runs/{run_id}"
    value = actions[0]["value"]
    request = srv.get("/approvals").json()["approvals"][0]
    assert json.loads(value) == {"run_id": run_id, "request_id": request["request_id"]}
    (repeat,) = slack.of("chat.update")
    message_ts = repeat["ts"]
    assert repeat["channel"] == CHANNEL and repeat["blocks"] == posted["blocks"]
    delivery_ids = {b["delivery_id"] for b in webhook.received if b["kind"] == "approval_request"}
    assert len(delivery_ids) == 1  # the webhook got the same notice, under one delivery id
    for line, parts in SECRETS:  # nothing of the corpus in what reached Slack
        assert not any(p in json.dumps(slack.calls) for p in parts), line

    def unchanged() -> None:
        run = srv.run(run_id)
        assert run["status"] == "awaiting_approval" and run["approval"] is None, run
        assert len(slack.of("chat.update")) == 1
        assert container_state(docker_client, app.name)["Status"] == "exited"

    click = click_body("UANA", "approve", value, CHANNEL, message_ts)
    # Not Slack: no signature, a forged one, a replay of a real one five minutes and more later.
    assert post_click(srv, click, {}).status_code == 401
    forged = signed("not-the-secret", click)
    assert post_click(srv, click, forged).status_code == 401
    replay = signed(SECRET, click, at=time.time() - 6 * 60)
    assert post_click(srv, click, replay).status_code == 401
    tampered = click.replace(b"UANA", b"UVIC")
    assert post_click(srv, tampered, signed(SECRET, click) | {}).status_code == 401
    unchanged()

    # Slack's, but refused: who clicked, or what they clicked on.
    old = json.dumps({"run_id": run_id, "request_id": "0123abcd" * 2})
    refusals = [
        (click_body("UNOBODY", "approve", value, CHANNEL, message_ts), "unknown_user"),
        (click_body("UVIC", "approve", value, CHANNEL, message_ts), "forbidden"),
        (click_body("UANA", "approve", old, CHANNEL, message_ts), "stale_request"),
    ]
    for body, reason in refusals:
        answer = post_click(srv, body, signed(SECRET, body))
        assert answer.status_code == 200 and answer.json()["ok"] is False, answer.text
        assert answer.json()["reason"] == reason
    told = slack.of("chat.postEphemeral")
    assert [t["user"] for t in told] == ["UNOBODY", "UVIC", "UANA"]
    unchanged()

    # The approver's click resolves the fault; the message shows who decided, without buttons.
    answer = post_click(srv, click, signed(SECRET, click))
    assert answer.status_code == 200 and answer.json()["ok"] is True, answer.text
    run = srv.wait_status(run_id, "completed")
    assert run["outcome"] == "resolved", run
    assert run["approval"]["approver"] == "ana" and run["approval"]["decision"] == "approve"
    assert container_state(docker_client, app.name)["Status"] == "running"
    decided = slack.of("chat.update")[-1]
    assert decided["ts"] == message_ts and decided["channel"] == CHANNEL
    assert "Approved by ana" in texts(decided["blocks"])
    assert all(b["type"] != "actions" for b in decided["blocks"])

    # The same button again: the request is no longer current.
    again = post_click(srv, click, signed(SECRET, click))
    assert again.json() == {
        "ok": False,
        "reason": "stale_request",
        "detail": again.json()["detail"],
    }
    assert srv.run(run_id)["approval"]["approver"] == "ana"
    assert len(slack.of("chat.postMessage")) == 1
    slack.shutdown()
    webhook.shutdown()
