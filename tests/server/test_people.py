"""People in the loop over HTTP and the command line: users with roles and their own tokens, the
approver as the authenticated user, a trusted proxy's users, and `approvals`/`approve` deciding
a real broken container's run (issue 15)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Callable

import httpx

from tests.server.conftest import Server, alert_payload
from tests.support.containers import Lab

PROXY = {"TRUSTED_PROXY_AUTH": "true", "TRUSTED_PROXIES": "127.0.0.1"}


def cli(srv: Server, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devops_agent", *args],
        cwd=srv.workdir,
        env={**srv.env(), **env},
        capture_output=True,
        text=True,
        timeout=300,  # a limit, not a measure: a loaded machine imports slowly
    )


def as_user(srv: Server, method: str, path: str, token: str | None = None, **kw: object) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    headers.update(kw.pop("headers", {}))  # type: ignore[arg-type]
    response = httpx.request(
        method,
        srv.url + path,
        headers=headers,
        timeout=30,
        trust_env=False,
        **kw,  # type: ignore[arg-type]
    )
    return response.status_code


def test_users_roles_tokens_and_the_proxy(make_server: Callable[..., Server]) -> None:
    srv = make_server(**PROXY)
    vera = srv.add_user("vera", "viewer")
    apu = srv.add_user("apu", "approver", "--slack-id", "U024BE7LH")
    assert len(vera) >= 40 and vera != apu
    for name in ("policy", "admin"):  # the rest of the reserved names: tests/unit/test_users.py
        refused = cli(srv, "users", "add", name, "--role", "approver")
        assert refused.returncode == 2 and "error:" in refused.stderr, (name, refused.stderr)
    twin = cli(srv, "users", "add", "apu2", "--role", "viewer", "--slack-id", "U024BE7LH")
    assert twin.returncode == 2 and "exists" in twin.stderr
    listed = cli(srv, "users", "list")
    assert listed.returncode == 0 and "apu\tapprover\tU024BE7LH" in listed.stdout
    assert vera not in listed.stdout and apu not in listed.stdout
    with sqlite3.connect(srv.data_dir / "agent.db") as db:  # only the hash is stored
        rows = db.execute("SELECT name, token_hash FROM users ORDER BY name").fetchall()
    assert [r[0] for r in rows] == ["apu", "vera"] and all(vera not in r[1] for r in rows)

    # roles: a viewer reads; an approver also decides; the admin (AGENT_API_TOKEN) does all
    assert as_user(srv, "GET", "/runs", vera) == 200
    assert as_user(srv, "POST", "/runs/nope/resume", vera, json={"decision": "approve"}) == 403
    assert as_user(srv, "POST", "/control/pause-actions", vera) == 403
    assert as_user(srv, "GET", "/audit/verify", vera) == 403
    assert as_user(srv, "POST", "/runs/nope/resume", apu, json={"decision": "approve"}) == 404
    body = {"decision": "approve", "approver": "ana"}  # not the authenticated user
    assert as_user(srv, "POST", "/runs/nope/resume", apu, json=body) == 422
    assert as_user(srv, "POST", "/control/pause-actions", apu) == 403
    assert as_user(srv, "POST", "/monitoring/cycle", apu) == 403
    assert as_user(srv, "GET", "/audit/verify", srv.token) == 200
    assert as_user(srv, "GET", "/runs", "not-a-token") == 401

    # a trusted proxy's user: unknown ones are viewers, known ones keep their role
    carol = {"X-Forwarded-User": "carol"}
    assert as_user(srv, "GET", "/runs", headers=carol) == 200
    assert as_user(srv, "POST", "/runs/nope/resume", headers=carol, json=body) == 403
    named = {"X-Forwarded-Email": "apu"}
    assert (
        as_user(srv, "POST", "/runs/nope/resume", headers=named, json={"decision": "approve"})
        == 404
    )
    assert as_user(srv, "GET", "/runs", headers={"X-Forwarded-User": "policy"}) == 401
    assert as_user(srv, "GET", "/runs") == 401

    # users over HTTP, for admins only
    assert as_user(srv, "GET", "/users", apu) == 403
    assert as_user(srv, "POST", "/users", apu, json={"name": "x", "role": "admin"}) == 403
    with srv.client() as admin:
        assert [u["name"] for u in admin.get("/users").json()["users"]] == ["apu", "vera"]
        made = admin.post("/users", json={"name": "cy", "role": "approver"})
        assert made.status_code == 201 and made.json()["role"] == "approver"
        assert as_user(srv, "GET", "/runs", made.json()["token"]) == 200
        assert admin.post("/users", json={"name": "cy"}).status_code == 409
        assert admin.post("/users", json={"name": "policy"}).status_code == 422
        assert admin.post("/users", json={"name": "dee", "role": "root"}).status_code == 422
        assert admin.delete("/users/cy").status_code == 204
        assert admin.delete("/users/cy").status_code == 404
        assert as_user(srv, "GET", "/runs", made.json()["token"]) == 401

    removed = cli(srv, "users", "remove", "vera")
    assert removed.returncode == 0
    assert as_user(srv, "GET", "/runs", vera) == 401
    assert cli(srv, "users", "remove", "vera").returncode == 1


def test_the_proxy_is_trusted_only_when_configured(make_server: Callable[..., Server]) -> None:
    srv = make_server(TRUSTED_PROXY_AUTH="true", TRUSTED_PROXIES="10.9.8.7")
    assert as_user(srv, "GET", "/runs", headers={"X-Forwarded-User": "carol"}) == 401


def test_approvals_and_approve_on_a_real_container(
    make_server: Callable[..., Server], lab: Lab
) -> None:
    srv = make_server()
    apu = srv.add_user("apu", "approver")
    vera = srv.add_user("vera", "viewer")
    crashed = lab.crashed()
    run_id = srv.webhook(alert_payload(crashed.name)).json()["runs"][0]["run_id"]
    srv.wait_status(run_id, "awaiting_approval")

    (waiting,) = srv.get("/approvals").json()["approvals"]
    assert waiting["run_id"] == run_id and waiting["request_id"]
    assert waiting["diagnosis"]["category"] == "crash"
    assert waiting["diagnosis"]["evidence"] and all(
        e["source"] and e["summary"] for e in waiting["diagnosis"]["evidence"]
    )
    assert [(s["operation"], s["risk"]) for s in waiting["plan"]["steps"]] == [
        ("restart_service", "medium")
    ]
    assert waiting["reason"] == "safety_mode" and waiting["policy"].startswith("policy ")
    assert waiting["reasons"][0]["code"] == "safety_mode" and waiting["deadline"]
    assert waiting["learning"] and "restart_service" in waiting["learning"][0]
    assert isinstance(waiting["alternatives"], list)
    one = srv.run(run_id)["approval_request"]
    assert one["request_id"] == waiting["request_id"]
    assert one["diagnosis"] == waiting["diagnosis"]

    client = {"DEVOPS_AGENT_URL": srv.url}
    listed = cli(srv, "approvals", **client, DEVOPS_AGENT_TOKEN=vera)
    assert listed.returncode == 0, listed.stderr
    assert run_id in listed.stdout and "evidence [" in listed.stdout
    assert "restart_service" in listed.stdout and "safety_mode" in listed.stdout
    no = cli(srv, "approve", run_id, **client, DEVOPS_AGENT_TOKEN=vera)
    assert no.returncode == 1 and "403" in no.stderr
    yes = cli(srv, "approve", run_id, "--comment", "go", **client, DEVOPS_AGENT_TOKEN=apu)
    assert yes.returncode == 0, yes.stderr
    assert "approved by apu" in yes.stdout and "restart_service" in yes.stdout
    run = srv.wait_status(run_id, "completed")
    assert run["outcome"] == "resolved", run
    assert (run["approval"]["approver"], run["approval"]["comment"]) == ("apu", "go")
    assert run["approval"]["override"] is None
    again = cli(srv, "reject", run_id, **client, DEVOPS_AGENT_TOKEN=apu)
    assert again.returncode == 1 and "not waiting" in again.stderr
    rows = srv.get("/audit", params={"run_id": run_id, "kind": "approval"}).json()["rows"]
    assert [r["actor"] for r in rows] == ["apu"]


def test_override_with_an_alternative(make_server: Callable[..., Server], lab: Lab) -> None:
    """A person approves an alternative instead of the plan: checked, recorded, and run."""
    srv = make_server(MAX_ATTEMPTS="1", VALIDATE_TIMEOUT="3")
    pair = lab.dependency_down()
    run_id = srv.webhook(alert_payload(pair.app.name)).json()["runs"][0]["run_id"]
    srv.wait_status(run_id, "awaiting_approval")
    request = srv.run(run_id)["approval_request"]
    assert [s["target"] for s in request["plan"]["steps"]] == [pair.dependency.name]
    (alternative,) = request["alternatives"]
    assert alternative["workflow"] == "dependency-down" and alternative["phase"] == 1
    assert [(s["operation"], s["target"], s["risk"]) for s in alternative["steps"]] == [
        ("restart_service", pair.app.name, "medium")
    ]
    assert "did not hold" in alternative["why_not"]
    unknown = srv.resume(run_id, "approve", override=7)
    assert unknown.status_code == 422 and "not offered" in unknown.json()["detail"]
    rejecting = srv.resume(run_id, "reject", override=0)
    assert rejecting.status_code == 422
    chosen = srv.resume(run_id, "approve", override=0, request_id=request["request_id"])
    assert chosen.status_code == 202, chosen.text
    run = srv.wait_status(run_id, "completed")
    assert run["approval"]["override"]["alternative"] == 0
    assert [(a["operation"], a["target"]) for a in run["actions"]] == [
        ("restart_service", pair.app.name)
    ]
