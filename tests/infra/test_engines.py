"""INFRA_TARGETS: several real Docker engines, the shared one and a second dockerd reached over
its own unix socket and over tcp:// with TLS (certificates made by the test with openssl)."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devops_agent.config import SettingsError, load_settings
from devops_agent.context import AgentContext
from devops_agent.runner import open_agent
from devops_agent.state import Alert
from tests.infra.dockerd import Engine, second_engine
from tests.support.containers import Lab, probe
from tests.support.factories import drive

pytestmark = pytest.mark.docker
MAIN = "main=unix:///var/run/docker.sock"


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with second_engine() as started:
        yield started


async def incident(directory: Path, service: str, **settings: Any) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    s = load_settings(
        database_url=f"sqlite+aiosqlite:///{directory}/agent.db",
        data_dir=directory,
        safety_mode=False,
        auto_approve_max_risk="medium",
        validate_timeout=15,
        validate_settle=1,
        **settings,
    )
    alert = Alert(alertname="ServiceDown", fingerprint="f", labels={"service": service})
    async with open_agent(AgentContext.from_settings(s)) as agent:
        await drive(agent, "run-1", [alert])
        return await agent.state("run-1")


def health_of(state: dict[str, Any]) -> dict[str, Any]:
    [health] = [e for e in state["evidence"] if e["source"] == "health_check"]
    return health


async def test_targets_across_engines(tmp_path, lab: Lab, engine: Engine) -> None:
    far = Lab(engine.client)
    try:
        certs = tmp_path / "certs"
        shutil.copytree(engine.client_certs, certs / "edge")  # the engine's own directory
        edge = f"edge=tcp://127.0.0.1:{engine.tcp_url.rsplit(':', 1)[1]}"

        # A crash on the engine reached over tcp:// with TLS is fixed there.
        crashed = far.crashed()
        over_tls = await incident(
            tmp_path / "tls", crashed.name, infra_targets=f"{MAIN},{edge}", docker_cert_path=certs
        )
        assert over_tls["diagnosis"]["category"] == "crash"
        assert over_tls["target"]["key"] == f"engine:edge/container:{crashed.name}"
        assert health_of(over_tls)["data"]["engine"] == "edge"
        assert [(a["operation"], a["status"]) for a in over_tls["actions"]] == [
            ("restart_service", "succeeded")
        ]
        assert over_tls["outcome"] == "resolved" and probe(crashed.health_url) == 200

        # One name on two engines: never guessed.
        twin = f"twin-{secrets.token_hex(3)}"
        lab.start(twin)
        far.start(twin)
        side = f"side={engine.unix_url}"
        both = await incident(tmp_path / "twin", twin, infra_targets=f"{MAIN},{side}")
        assert both["outcome"] == "escalated"
        assert both["escalation_reason"] == "ambiguous_target"
        assert "engine main" in both["escalation"] and "engine side" in both["escalation"]

        # An engine that does not answer is evidence; a name that no answering engine has,
        # while one did not answer, is not `unknown`.
        dead = f"dead=unix://{tmp_path}/no-engine.sock"
        crashed_here = far.crashed()
        quiet = await incident(
            tmp_path / "quiet", crashed_here.name, infra_targets=f"{side},{dead}"
        )
        assert quiet["outcome"] == "resolved" and probe(crashed_here.health_url) == 200
        health = health_of(quiet)
        assert "engine dead did not answer" in health["summary"]
        assert "dead" in health["data"]["engines_unreachable"]
        nowhere = await incident(
            tmp_path / "nowhere", "no-such-service-x1", infra_targets=f"{side},{dead}"
        )
        assert nowhere["outcome"] == "escalated"
        assert nowhere["escalation_reason"] == "backend_unreachable"
        assert "engine dead did not answer" in nowhere["escalation"]
    finally:
        far.cleanup()


def test_engine_settings_are_checked(tmp_path) -> None:
    with pytest.raises(SettingsError, match="INFRA_TARGETS: engine edge is tcp:// .*ca.pem"):
        load_settings(infra_targets="edge=tcp://127.0.0.1:2376", docker_cert_path=tmp_path)
    with pytest.raises(SettingsError, match="INFRA_TARGETS"):
        load_settings(infra_targets="edge=ssh://host")
    with pytest.raises(SettingsError, match="INFRA_TARGETS.*INFRA_BACKEND=docker"):
        load_settings(infra_targets=MAIN, infra_backend="swarm")
    with pytest.raises(SettingsError, match="GATEWAY_URL: required when INFRA_BACKEND=gateway"):
        load_settings(infra_backend="gateway")
    with pytest.raises(SettingsError, match="GATEWAY_OPERATIONS"):
        load_settings(gateway_operations="health_check,rm_rf")
