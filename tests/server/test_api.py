"""The HTTP contract: auth, payload validation, limits, the captured fixtures, the read endpoints."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import TOKEN, Server, alert_payload, fixture

pytestmark = pytest.mark.docker

# Every route but /health and the webhook, with the method it answers.
GUARDED = [
    ("GET", "/status"),
    ("GET", "/runs"),
    ("GET", "/runs/some-run"),
    ("GET", "/runs/some-run/history"),
    ("GET", "/runs/some-run/events"),
    ("GET", "/approvals"),
    ("POST", "/runs/some-run/resume"),
    ("GET", "/monitoring/status"),
    ("POST", "/control/start-monitoring"),
    ("POST", "/control/stop-monitoring"),
    ("POST", "/monitoring/cycle"),
    ("POST", "/control/pause-actions"),
    ("POST", "/control/resume-actions"),
    ("GET", "/audit"),
    ("GET", "/audit/verify"),
    ("GET", "/debug/docker"),
    ("GET", "/orchestrator/status"),
    ("GET", "/patterns"),
    ("GET", "/users"),
    ("POST", "/users"),
    ("DELETE", "/users/some-user"),
    ("GET", "/whoami"),
    ("POST", "/mcp"),  # the users' tokens (not in the OpenAPI document)
    ("GET", "/metrics"),
    ("GET", "/docs"),
    ("GET", "/redoc"),
    ("GET", "/openapi.json"),
    ("GET", "/no-such-route"),
]


def raw(server: Server, method: str, path: str, **kwargs: object) -> httpx.Response:
    return httpx.request(method, server.url + path, timeout=30, trust_env=False, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(("method", "path"), GUARDED)
def test_every_endpoint_needs_the_token(server: Server, method: str, path: str) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": TOKEN},
    ):
        response = raw(server, method, path, headers=headers)
        assert response.status_code == 401, (headers, response.text)
        assert response.json() == {"detail": "unauthorized"}
    in_query = raw(server, method, path, params={"token": TOKEN, "access_token": TOKEN})
    assert in_query.status_code == 401


def test_the_openapi_routes_match_the_guarded_list(server: Server) -> None:
    paths = set(server.get("/openapi.json").json()["paths"])
    listed = {p.replace("some-run", "{run_id}").replace("some-user", "{name}") for _, p in GUARDED}
    # /slack/interactions is authenticated by Slack's signature (tests/channels/test_slack.py)
    assert paths - listed == {"/health", "/webhook/alerts", "/slack/interactions"}


def test_health_needs_no_token(server: Server) -> None:
    assert raw(server, "GET", "/health").json() == {"status": "ok"}


def test_webhook_token(server: Server) -> None:
    payload = alert_payload("no-such-service-token")
    assert raw(server, "POST", "/webhook/alerts", json=payload).status_code == 401
    wrong = server.webhook(payload, token="not-the-webhook-token")
    assert wrong.status_code == 401 and wrong.json() == {"detail": "unauthorized"}
    api_token = server.webhook(payload, token=TOKEN)  # the API token is not the webhook token
    assert api_token.status_code == 401
    assert server.webhook(payload).status_code == 202


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        (b"{not json", 400, "not JSON"),
        (b"", 400, "not JSON"),
        (b"\xff\xfe", 400, "not JSON"),
        (b"[]", 422, "body"),
        (b"{}", 422, "status"),
        (json.dumps({"status": "firing", "alerts": []}).encode(), 422, "alerts"),
        (json.dumps({"status": "firing"}).encode(), 422, "alerts"),
        (json.dumps({"status": "burning", "alerts": [{}]}).encode(), 422, "status"),
        (
            json.dumps(
                {"status": "firing", "alerts": [{"status": "firing", "startsAt": "x"}]}
            ).encode(),
            422,
            "alerts.0.labels",
        ),
        (
            json.dumps(
                {"status": "firing", "alerts": [{"status": "on", "labels": {}, "startsAt": "x"}]}
            ).encode(),
            422,
            "alerts.0.status",
        ),
        (
            json.dumps(
                {
                    "status": "firing",
                    "alerts": [{"status": "firing", "labels": {"a": 1}, "startsAt": "x"}],
                }
            ).encode(),
            422,
            "alerts.0.labels.a",
        ),
    ],
)
def test_bad_payloads_are_4xx_with_a_message(
    server: Server, body: bytes, status: int, names: str
) -> None:
    response = httpx.post(
        f"{server.url}/webhook/alerts",
        content=body,
        headers={
            "Authorization": f"Bearer {server.webhook_token}",
            "Content-Type": "application/json",
        },
        trust_env=False,
    )
    assert response.status_code == status, response.text
    assert names in response.json()["detail"]


def test_body_over_one_mib_is_413(server: Server) -> None:
    limit = 1024 * 1024
    headers = {
        "Authorization": f"Bearer {server.webhook_token}",
        "Content-Type": "application/json",
    }
    too_big = httpx.post(
        f"{server.url}/webhook/alerts", content=b" " * (limit + 1), headers=headers, trust_env=False
    )
    assert too_big.status_code == 413 and "larger than" in too_big.json()["detail"]

    def chunks() -> object:  # no Content-Length: the limit holds while reading
        for _ in range(17):
            yield b" " * (64 * 1024)

    chunked = httpx.post(
        f"{server.url}/webhook/alerts", content=chunks(), headers=headers, trust_env=False
    )
    assert chunked.status_code == 413
    # Exactly at the limit is fine (a padded valid payload).
    payload = json.dumps(alert_payload("no-such-service-padded")).encode()
    padded = payload + b" " * (limit - len(payload))
    assert len(padded) == limit
    ok = httpx.post(
        f"{server.url}/webhook/alerts", content=padded, headers=headers, trust_env=False
    )
    assert ok.status_code == 202, ok.text


def test_captured_fixtures_are_accepted_as_they_are(server: Server) -> None:
    firing = server.webhook(fixture("firing.json"))
    assert firing.status_code == 202, firing.text
    [run] = firing.json()["runs"]
    assert run["service"] == "checkout" and firing.json()["ignored"] == 0
    done = server.wait_status(run["run_id"], "completed", "failed")
    assert done["status"] == "completed" and done["outcome"] == "escalated", done
    assert "unknown target" in done["escalation"]
    assert done["alerts"][0]["fingerprint"] == "a55fe5b0400545ba"

    resolved = server.webhook(fixture("resolved.json"))
    assert resolved.status_code == 202, resolved.text
    # Nothing open to close: the resolution is kept on the finished run, which stays as it was.
    assert resolved.json() == {
        "runs": [{"run_id": run["run_id"], "service": "checkout", "deduplicated": False}],
        "ignored": 0,
    }
    kept = server.run(run["run_id"])
    assert kept["outcome"] == "escalated" and {a["status"] for a in kept["alerts"]} == {
        "firing",
        "resolved",
    }
    again = server.webhook(fixture("firing.json")).json()
    assert again == {"runs": [{**run, "deduplicated": True}], "ignored": 0}


def test_resume_errors(server: Server) -> None:
    assert server.resume("no-such-run", "approve").status_code == 404
    run_id = server.webhook(alert_payload("no-such-service-resume")).json()["runs"][0]["run_id"]
    for body in (
        {"decision": "maybe", "approver": "ana"},
        {"decision": "approve", "approver": "ana"},  # not the authenticated user (admin)
        {"decision": "approve", "approver": ""},
        {"approver": "ana"},
        [],
    ):
        response = server.post(f"/runs/{run_id}/resume", json=body)
        assert response.status_code == 422, (body, response.text)
        assert response.json()["detail"]
    bad_json = server.post(
        f"/runs/{run_id}/resume", content=b"{", headers={"Content-Type": "application/json"}
    )
    assert bad_json.status_code == 422
    server.wait_status(run_id, "completed")
    conflict = server.resume(run_id, "approve")
    assert conflict.status_code == 409 and "not waiting" in conflict.json()["detail"]


def test_listing_filters_and_pages(server: Server) -> None:
    ids = [
        server.webhook(alert_payload(f"no-such-service-page-{i}")).json()["runs"][0]["run_id"]
        for i in range(3)
    ]
    for run_id in ids:
        server.wait_status(run_id, "completed")
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, "status": "completed", **({"cursor": cursor} if cursor else {})}
        page = server.get("/runs", params=params).json()
        assert len(page["runs"]) <= 2
        seen += [r["run_id"] for r in page["runs"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert [i for i in seen if i in ids] == list(reversed(ids))  # newest first
    assert len(seen) == len(set(seen))
    one = server.get("/runs", params={"service": "no-such-service-page-1"}).json()
    assert [r["run_id"] for r in one["runs"]] == [ids[1]] and one["next"] is None
    for params in ({"limit": 0}, {"limit": 1001}, {"status": "bogus"}, {"cursor": "x"}):
        assert server.get("/runs", params=params).status_code == 422, params
    assert server.get("/runs/no-such-run").status_code == 404
    assert server.get("/runs/no-such-run/history").status_code == 404
    assert server.get("/runs/no-such-run/events").status_code == 404


def test_finished_run_events_send_the_state_and_close(server: Server) -> None:
    run_id = server.webhook(alert_payload("no-such-service-sse")).json()["runs"][0]["run_id"]
    server.wait_status(run_id, "completed")
    response = server.get(f"/runs/{run_id}/events")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [
        line.removeprefix("event: ")
        for line in response.text.splitlines()
        if line.startswith("event: ")
    ]
    assert events == ["state", "end"]


def test_seed_endpoints(server: Server) -> None:
    status = server.get("/status").json()
    assert status["reasoner"] == "rules" and status["backend"]["reachable"] is True
    assert status["database"]["ok"] is True and set(status["runs"]) >= {"queued", "completed"}
    assert server.get("/monitoring/status").json()["running"] is False
    docker_view = server.get("/debug/docker").json()
    assert docker_view["reachable"] is True and isinstance(docker_view["containers"], list)
    orchestrator = server.get("/orchestrator/status").json()
    assert orchestrator["max_concurrent_runs"] == 8 and "recent_actions" in orchestrator
    metrics = server.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "devops_agent_http_requests_total" in metrics.text
    assert 'devops_agent_runs{status="completed"}' in metrics.text
    assert server.get("/approvals").json() == {"approvals": [], "next": None}
    assert "swagger-ui" in server.get("/docs").text.lower()
    assert "redoc" in server.get("/redoc").text.lower()
    assert "/webhook/alerts" in server.get("/openapi.json").json()["paths"]


def test_generated_token_file(make_server: Callable[..., Server]) -> None:
    srv = make_server(AGENT_API_TOKEN="")
    token_file = srv.data_dir / "api-token"
    token = token_file.read_text().strip()
    assert len(token) >= 32 and stat.S_IMODE(os.stat(token_file).st_mode) == 0o600
    assert token not in srv.logs() and str(token_file) in srv.logs()
    assert raw(srv, "GET", "/status").status_code == 401
    ok = raw(srv, "GET", "/status", headers={"Authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    srv.stop()
    srv.start()  # the same token is read back, not regenerated
    assert token_file.read_text().strip() == token


def test_production_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    srv = Server(tmp_path, env={"ENVIRONMENT": "production", "AGENT_API_TOKEN": ""})
    proc = srv.run_to_exit()
    assert proc.returncode != 0
    assert "AGENT_API_TOKEN" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data" / "api-token").exists()


def test_sigterm_stops_cleanly(make_server: Callable[..., Server]) -> None:
    srv = make_server()
    srv.stop()
    # uvicorn re-raises the signal once shut down: the conventional exit status of SIGTERM.
    assert srv.proc is not None and srv.proc.returncode in (0, -15)
    assert "Application shutdown complete" in srv.logs()
    assert "Traceback" not in srv.logs()
