"""Durable notifications (issue 13.4): an approval request and an escalation are stored in the
outbox with the change they tell about and delivered at least once, each under one delivery
id, across a kill of the sender placed before and after it posted."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.server.conftest import Server, alert_payload
from tests.server.test_durability import Receiver
from tests.support.containers import Lab, wait_for

pytestmark = pytest.mark.docker


def ids(receiver: Receiver, kind: str) -> list[str]:
    return [str(r["delivery_id"]) for r in receiver.received if r.get("kind") == kind]


@pytest.mark.parametrize(("point", "posts"), [("before_deliver", 1), ("after_deliver", 2)])
def test_an_approval_request_reaches_people_once_across_a_kill_of_the_sender(
    make_server: Callable[..., Server], lab: Lab, point: str, posts: int
) -> None:
    receiver = Receiver()
    app = lab.crashed()
    srv = make_server(NOTIFY_WEBHOOK_URL=receiver.url, DEVOPS_AGENT_FAULTS=f"{point}=kill")
    run_id = srv.webhook(alert_payload(app.name)).json()["runs"][0]["run_id"]
    assert srv.proc is not None
    srv.proc.wait(timeout=120)  # killed where `point` says
    srv.extra_env.pop("DEVOPS_AGENT_FAULTS")
    srv.start()
    wait_for(lambda: len(ids(receiver, "approval_request")) == posts, timeout=60, what="the posts")
    sent = ids(receiver, "approval_request")
    assert len(set(sent)) == 1, sent  # a repeat carries the same id: the receiver can drop it
    request = srv.get("/approvals").json()["approvals"][0]
    asked = [r for r in receiver.received if r.get("kind") == "approval_request"][0]
    assert asked["run_id"] == run_id and asked["request_id"] == request["request_id"]
    wait_for(lambda: srv.get("/status").json()["notifications"]["backlog"] == 0, timeout=30)
    receiver.shutdown()


def test_an_escalation_is_retried_until_the_receiver_takes_it(
    make_server: Callable[..., Server], lab: Lab
) -> None:
    receiver = Receiver()
    receiver.status = 503  # down for now
    app = lab.crashed()
    srv = make_server(NOTIFY_WEBHOOK_URL=receiver.url)
    run_id = srv.webhook(alert_payload(app.name)).json()["runs"][0]["run_id"]
    srv.wait_status(run_id, "awaiting_approval")
    assert srv.resume(run_id, "reject").status_code == 202
    srv.wait_status(run_id, "completed")
    wait_for(lambda: len(ids(receiver, "escalation")) >= 2, timeout=60, what="retries")
    assert srv.get("/status").json()["notifications"]["backlog"] >= 1
    receiver.status = 200
    wait_for(lambda: srv.get("/status").json()["notifications"]["backlog"] == 0, timeout=60)
    escalated = ids(receiver, "escalation")
    assert len(set(escalated)) == 1, escalated
    (last,) = {r["outcome"] for r in receiver.received if r.get("kind") == "escalation"}
    assert last == "rejected"
    receiver.shutdown()
