"""INFRA_BACKEND=gateway over real HTTP: the agent sends intents to a real `devops-agent gateway
serve` process, which carries them out on the real Docker engine."""

from __future__ import annotations

import secrets
import sqlite3
from pathlib import Path
from typing import Any

import docker
import pytest

from devops_agent.config import load_settings
from devops_agent.context import AgentContext
from devops_agent.gateway.store import digest
from devops_agent.runner import open_agent
from devops_agent.state import Alert
from devops_agent.tools.gateway import GatewayBackend
from tests.infra.gateway import LosingProxy, gateway
from tests.support.containers import Lab, logs, probe
from tests.support.factories import drive

pytestmark = pytest.mark.docker


async def incident(
    directory: Path, service: str, url: str, token: str, run_id: str | None = None
) -> dict[str, Any]:
    """One alert for `service` through the whole graph, the agent on INFRA_BACKEND=gateway."""
    directory.mkdir(parents=True, exist_ok=True)
    run_id = run_id or f"run-{directory.name}"
    settings = load_settings(
        database_url=f"sqlite+aiosqlite:///{directory}/agent.db",
        data_dir=directory,
        infra_backend="gateway",
        gateway_url=url,
        gateway_token=token,
        gateway_timeout=30,
        safety_mode=False,
        auto_approve_max_risk="medium",
        validate_timeout=15,
        validate_settle=1,
    )
    alert = Alert(alertname="ServiceDown", fingerprint=run_id, labels={"service": service})
    async with open_agent(AgentContext.from_settings(settings)) as agent:
        await drive(agent, run_id, [alert])
        return await agent.state(run_id)


def done(state: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(a["operation"], a["target"], a["status"]) for a in state.get("actions", [])]


def starts(client: docker.DockerClient, name: str) -> int:
    """How many times the app in `name` started (each start logs `listening`)."""
    return logs(client, name).count("info: listening on")


def recorded(db: Path) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT key, operation, target, intent FROM intents").fetchall()


async def test_faults_through_the_gateway(tmp_path, lab: Lab, docker_client) -> None:
    token = secrets.token_hex(16)
    crashed, hung, pair, fine = lab.crashed(), lab.hung(), lab.dependency_down(), lab.healthy()
    with gateway(tmp_path / "gw", token) as gw:
        crash = await incident(tmp_path / "crash", crashed.name, gw.url, token)
        assert crash["diagnosis"]["category"] == "crash"
        assert done(crash) == [("restart_service", crashed.name, "succeeded")]
        assert crash["outcome"] == "resolved" and probe(crashed.health_url) == 200
        # The gateway kept the intent under the ledger key, with what was intended and why.
        [(key, operation, target, why)] = recorded(gw.db)
        assert (key, operation, target) == ("run-crash:1:0", "restart_service", crashed.name)
        assert why.startswith(f"restart_service on {crashed.name}: ")

        hang = await incident(tmp_path / "hang", hung.name, gw.url, token)
        assert hang["diagnosis"]["category"] == "hang"
        assert done(hang) == [("restart_service", hung.name, "succeeded")]
        assert hang["outcome"] == "resolved" and probe(hung.health_url) == 200

        dep = await incident(tmp_path / "dep", pair.app.name, gw.url, token)
        assert dep["diagnosis"]["category"] == "dependency_failure"
        assert done(dep) == [("restart_service", pair.dependency.name, "succeeded")]
        assert dep["outcome"] == "resolved" and probe(pair.app.health_url) == 200

        calm = await incident(tmp_path / "calm", fine.name, gw.url, token)
        assert calm["diagnosis"]["category"] == "no_fault"
        assert calm["outcome"] == "no_action" and done(calm) == []

        lost = await incident(tmp_path / "unknown", "no-such-service-x1", gw.url, token)
        assert lost["outcome"] == "escalated" and lost["escalation_reason"] == "unknown_target"
        assert len(recorded(gw.db)) == 3  # reads are not kept; each restart once


async def test_lost_answer_acts_once_and_keys_survive_a_restart(
    tmp_path, lab: Lab, docker_client
) -> None:
    token = secrets.token_hex(16)
    crashed, other, clash = lab.crashed(), lab.crashed(), lab.crashed()
    directory = tmp_path / "gw"
    with gateway(directory, token) as gw:
        port = int(gw.url.rsplit(":", 1)[1])
        restart = (b"POST /intents", b'"operation":"restart_service"')
        proxy = LosingProxy(upstream=port, lose=restart)
        try:
            state = await incident(tmp_path / "agent", crashed.name, proxy.url, token)
        finally:
            proxy.close()
        sent = [r for r in proxy.seen if all(part in r for part in restart)]
        assert proxy.lost == 1 and len(sent) == 2  # asked again after the lost answer ...
        assert all(b'"idempotency_key":"run-agent:1:0"' in r for r in sent)  # ... with the same key
        assert done(state) == [("restart_service", crashed.name, "succeeded")]
        assert state["outcome"] == "resolved"
        assert starts(docker_client, crashed.name) == 2  # started once, restarted once

        # A key is kept durably: the same intent after the gateway was killed acts not again.
        body = {
            "operation": "restart_service",
            "target": other.name,
            "params": {"timeout": 5},
            "intent": "restart it: it crashed",
            "context": {"run_id": "manual"},
            "idempotency_key": "manual:1:0",
        }
        first = gw.post("/intents", body).json()
        assert first["replayed"] is False and first["result"]["ok"] is True
        gw.kill()
    with gateway(directory, token) as again:
        second = again.post("/intents", body).json()
        assert second["replayed"] is True and second["result"] == first["result"]
        assert starts(docker_client, other.name) == 2
        reused = again.post("/intents", {**body, "params": {"timeout": 9}})
        assert reused.status_code == 409  # one key, one intent
        asked = {"operation": "restart_service", "params": {"target": other.name}}
        found = again.post("/reconcile", {**asked, "idempotency_key": "manual:1:0"}).json()
        assert found["verdict"] == "done" and "the gateway did it" in found["detail"]
        # A key begun by a gateway that died before recording its end: reality must say.
        same = digest("restart_service", {**body["params"], "target": other.name})
        with sqlite3.connect(again.db) as conn:
            conn.execute(
                "INSERT INTO intents (key, operation, target, digest, intent, context, status,"
                " started_at) VALUES ('cut:1:0', 'restart_service', ?, ?, '', '{}', 'started',"
                " '2026-01-01')",
                (other.name, same),
            )
        cut = again.post("/intents", {**body, "idempotency_key": "cut:1:0"}).json()
        assert cut["result"]["error"] == "timeout" and cut["result"]["data"]["in_flight"]
        assert starts(docker_client, other.name) == 2  # and still nothing acted twice
        # A 4xx for a step (here 409: the step's key was used for another intent) is the
        # backend's refusal, recorded with its own code, not as the policy's.
        with sqlite3.connect(again.db) as conn:
            conn.execute(
                "INSERT INTO intents (key, operation, target, digest, intent, context, status,"
                " started_at) VALUES ('run-clash:1:0', 'restart_service', ?, 'other', '', '{}',"
                " 'finished', '2026-01-01')",
                (clash.name,),
            )
        refused = await incident(tmp_path / "clash", clash.name, again.url, token)
        [step] = refused["actions"]
        assert step["status"] == "refused" and step["reason"] == "backend_unreachable"
        assert refused["outcome"] == "escalated"
        assert refused["escalation_reason"] == "backend_unreachable"
        assert "the backend refused restart_service" in refused["escalation"]
        assert "HTTP 409" in refused["escalation"] and "policy" not in refused["escalation"]
        assert starts(docker_client, clash.name) == 1


async def test_wrong_token_killed_gateway_and_its_own_allowlist(
    tmp_path, lab: Lab, docker_client
) -> None:
    token = secrets.token_hex(16)
    crashed = lab.crashed()
    with gateway(tmp_path / "gw", token, GATEWAY_OPERATIONS="health_check,get_logs") as gw:
        for given in (None, "wrong"):
            headers = {"Authorization": f"Bearer {given}"} if given else {}
            import httpx

            r = httpx.post(gw.url + "/intents", json={}, headers=headers, trust_env=False)
            assert r.status_code == 401
            assert token not in r.text
        assert (await GatewayBackend(gw.url, token).ping()).ok  # what /status shows
        refused_ping = await GatewayBackend(gw.url, "not-the-token").ping()
        assert refused_ping.error == "refused" and "GATEWAY_TOKEN" in refused_ping.message
        wrong = await incident(tmp_path / "wrong", crashed.name, gw.url, "not-the-token")
        assert wrong["outcome"] == "escalated"
        assert wrong["escalation_reason"] == "backend_unreachable"
        assert "refused the agent's credentials" in wrong["escalation"]
        # The gateway's allowlist refuses what the agent's policy allowed.
        body = {
            "operation": "restart_service",
            "target": crashed.name,
            "idempotency_key": "k1",
        }
        refused = gw.post("/intents", body).json()["result"]
        assert refused["error"] == "refused" and "allowlist" in refused["message"]
        denied = await incident(tmp_path / "denied", crashed.name, gw.url, token)
        assert [a["status"] for a in denied["actions"]] == ["refused"]
        assert denied["escalation_reason"] == "not_allowlisted"
        assert "GATEWAY_OPERATIONS" in denied["escalation"]
        gw.kill()
        assert not gw.healthy()
        assert (await GatewayBackend(gw.url, token).ping()).error == "unreachable"
        down = await incident(tmp_path / "down", crashed.name, gw.url, token)
    assert down["outcome"] == "escalated"
    assert down["escalation_reason"] == "backend_unreachable"
    assert "gateway unreachable" in down["escalation"]
    assert docker_client.containers.get(crashed.name).status == "exited"  # nothing acted
    assert starts(docker_client, crashed.name) == 1
