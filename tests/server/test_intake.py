"""Intake on real servers, on SQLite and PostgreSQL: whatever passes validation is stored, and
what cannot be is a 422 naming the field; a late firing alert (its resolution came first) starts
nothing; truncated groups are kept on the run, counted and logged; bodies over the limit get a
413 the client can read."""

from __future__ import annotations

import copy
import re
import secrets
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from devops_agent import sizes
from devops_agent.memory.db import make_engine
from tests.conftest import fresh_pg_database
from tests.server.conftest import Server, alert_payload
from tests.support.containers import Lab

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server per database kind, shared by the tests of this module."""
    with ExitStack() as stack:
        env: dict[str, str] = {}
        if request.param == "postgresql":
            url = stack.enter_context(fresh_pg_database())
            env = {"DATABASE_URL": url, "AUDIT_KEY": secrets.token_hex(32)}
        srv = Server(tmp_path_factory.mktemp(f"intake-{request.param}"), env=env).start()
        stack.callback(srv.stop)
        yield srv


def database_url(srv: Server) -> str:
    return srv.extra_env.get("DATABASE_URL") or f"sqlite:///{srv.data_dir / 'agent.db'}"


def one_alert(service: str, **alert: Any) -> dict[str, Any]:
    """The captured payload for `service`, with fields of its one alert replaced."""
    payload = alert_payload(service)
    payload["alerts"][0].update(alert)
    return payload


def first_run(response: httpx.Response) -> str:
    assert response.status_code == 202, response.text
    runs = response.json()["runs"]
    assert len(runs) == 1, response.text
    return str(runs[0]["run_id"])


def metric(srv: Server, name: str) -> float:
    text = srv.get("/metrics").text
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_the_columns_are_the_sizes_validation_accepts(db_server: Server) -> None:
    """After the migrations, each stored alert field's column is exactly the size validated."""
    engine = make_engine(database_url(db_server))
    try:
        columns = {
            (table, c["name"]): c["type"]
            for table in ("alerts", "runs")
            for c in sa.inspect(engine).get_columns(table)
        }
    finally:
        engine.dispose()
    for key, size in [
        (("alerts", "fingerprint"), sizes.FINGERPRINT),
        (("alerts", "alertname"), sizes.ALERTNAME),
        (("alerts", "service"), sizes.SERVICE),
        (("alerts", "starts_at"), sizes.STARTS_AT),
        (("runs", "service"), sizes.SERVICE),
    ]:
        assert getattr(columns[key], "length", None) == size, (key, columns[key])
    assert isinstance(columns[("runs", "truncated_alerts")], sa.Integer)


def test_whatever_passes_validation_is_stored(db_server: Server) -> None:
    tag = secrets.token_hex(4)
    longest = {
        "fingerprint": "f" * sizes.FINGERPRINT,
        "startsAt": "2026-12-01T08:00:00." + "0" * (sizes.STARTS_AT - 21) + "Z",
    }
    payload = one_alert(f"fits-{tag}", **longest)
    payload["alerts"][0]["labels"]["alertname"] = "A" * sizes.ALERTNAME
    payload["truncatedAlerts"] = sizes.COUNT
    run = db_server.run(first_run(db_server.webhook(payload)))
    stored = run["alerts"][0]
    assert stored["fingerprint"] == longest["fingerprint"]
    assert stored["startsAt"] == longest["startsAt"]
    assert stored["alertname"] == "A" * sizes.ALERTNAME
    assert run["truncated_alerts"] == sizes.COUNT

    # The target label may be longer than the service column: the service is its first part.
    long_service = f"s{tag}" + "x" * 4000
    run = db_server.run(first_run(db_server.webhook(one_alert(long_service))))
    assert run["service"] == long_service[: sizes.SERVICE]


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("fingerprint", lambda p: p["alerts"][0].update(fingerprint="f" * (sizes.FINGERPRINT + 1))),
        ("fingerprint", lambda p: p["alerts"][0].update(fingerprint="f" * 200)),
        ("startsAt", lambda p: p["alerts"][0].update(startsAt="t" * (sizes.STARTS_AT + 1))),
        (
            "alertname",
            lambda p: p["alerts"][0]["labels"].update(alertname="A" * (sizes.ALERTNAME + 1)),
        ),
        ("truncatedAlerts", lambda p: p.update(truncatedAlerts=sizes.COUNT + 1)),
    ],
)
def test_what_cannot_be_stored_is_a_422_naming_the_field(
    db_server: Server, field: str, change: Any
) -> None:
    service = f"toolong-{secrets.token_hex(4)}"
    payload = alert_payload(service)
    change(payload)
    response = db_server.webhook(payload)
    assert response.status_code == 422, response.text
    assert field in response.json()["detail"], response.text
    assert db_server.get("/runs", params={"service": service}).json()["runs"] == []


def test_a_firing_alert_after_its_resolution_starts_no_run(db_server: Server) -> None:
    service = f"late-{secrets.token_hex(4)}"
    fingerprint = secrets.token_hex(8)
    resolved = alert_payload(service, "resolved", fingerprint, "2026-12-01T08:00:00Z")
    firing = alert_payload(service, "firing", fingerprint, "2026-12-01T08:00:00Z")
    answer = db_server.webhook(resolved)
    assert answer.status_code == 202 and answer.json() == {"runs": [], "ignored": 1}
    for _ in range(2):  # the late firing notification, and Alertmanager's repeat of it
        answer = db_server.webhook(firing)
        assert answer.status_code == 202 and answer.json() == {"runs": [], "ignored": 1}
    assert db_server.get("/runs", params={"service": service}).json()["runs"] == []

    # A later incident of the same alert (a new startsAt) is a new run as always.
    again = alert_payload(service, "firing", fingerprint, "2026-12-01T09:00:00Z")
    run_id = first_run(db_server.webhook(again))
    assert db_server.run(run_id)["service"] == service


def test_a_resolution_in_the_same_notification_as_its_firing_starts_no_run(
    db_server: Server,
) -> None:
    service = f"both-{secrets.token_hex(4)}"
    payload = alert_payload(service, "resolved")
    firing = copy.deepcopy(payload["alerts"][0])
    firing.update(status="firing", endsAt="0001-01-01T00:00:00Z")
    payload["alerts"].append(firing)
    answer = db_server.webhook(payload)
    assert answer.status_code == 202 and answer.json() == {"runs": [], "ignored": 2}
    assert db_server.get("/runs", params={"service": service}).json()["runs"] == []


def test_truncated_groups_are_kept_on_the_run_counted_and_logged(db_server: Server) -> None:
    service = f"big-group-{secrets.token_hex(4)}"
    before = metric(db_server, "devops_agent_alerts_truncated_total")
    payload = alert_payload(service)
    payload["truncatedAlerts"] = 7
    run_id = first_run(db_server.webhook(payload))
    assert db_server.run(run_id)["truncated_alerts"] == 7
    assert "left 7 alert(s) out of a notification" in db_server.logs()
    assert run_id in db_server.logs()

    untruncated = alert_payload(f"small-group-{secrets.token_hex(4)}")
    assert db_server.run(first_run(db_server.webhook(untruncated)))["truncated_alerts"] == 0
    assert metric(db_server, "devops_agent_alerts_truncated_total") == before + 7


def test_a_run_keeps_the_most_truncated_of_its_notifications(db_server: Server, lab: Lab) -> None:
    """A crashed container in safety mode: the run waits, and later notifications join it."""
    app = lab.crashed()
    seen: list[int] = []
    run_ids: set[str] = set()
    for truncated in (5, 2, 9):
        payload = alert_payload(app.name)  # a new fingerprint each time: it joins the open run
        payload["truncatedAlerts"] = truncated
        run_id = first_run(db_server.webhook(payload))
        run_ids.add(run_id)
        if not seen:
            db_server.wait_status(run_id, "awaiting_approval")
        seen.append(db_server.run(run_id)["truncated_alerts"])
        assert run_id == first_run(db_server.webhook(payload))  # a repeat changes nothing
    assert len(run_ids) == 1
    assert seen == [5, 5, 9]
    assert db_server.resume(run_id, "reject").status_code == 202


# -- bodies over the limit ----------------------------------------------------------------------


def raw_post(srv: Server, path: str, body: bytes, token: str) -> bytes:
    """POST over a plain socket: send every byte, then read the answer to the end."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", srv.port), timeout=30) as sock:
        sock.sendall(head)
        sock.sendall(body)  # a server that closed early makes this fail with a reset
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    ("path", "size", "webhook"),
    [("/webhook/alerts", 3 * 1024 * 1024, True), ("/runs/x/resume", 3 * 1024 * 1024, False)],
)
def test_a_body_over_the_limit_gets_a_413_the_client_reads(
    server: Server, path: str, size: int, webhook: bool
) -> None:
    token = server.webhook_token if webhook else server.token
    for _ in range(3):
        answer = raw_post(server, path, b" " * size, token)
        assert answer.startswith(b"HTTP/1.1 413 "), answer[:200]
        assert b"request body is larger than" in answer

    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def chunks() -> Iterator[bytes]:
        for _ in range(size // 65536):
            yield b" " * 65536

    with httpx.Client(base_url=server.url, headers=headers, timeout=60, trust_env=False) as c:
        for content in (b" " * size, chunks()):  # with a Content-Length, and chunked
            response = c.post(path, content=content)
            assert response.status_code == 413, response.text
            assert "larger than" in response.json()["detail"]
    assert server.get("/health").status_code == 200
