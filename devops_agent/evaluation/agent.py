"""The agent as a contender: a real `devops-agent serve` subprocess, fed over its webhook.

The server runs on its own DATA_DIR and a free port, as an autonomous agent is configured:
SAFETY_MODE=false, AUTO_APPROVE_MAX_RISK=medium, and short VALIDATE_SETTLE and
REMEDIATION_COOLDOWN (settings the agent ignores until it has them). Each case's containers
have fresh names, so what it learned on one case cannot help or hurt another; the global
MAX_ACTIONS_PER_HOUR is raised because a suite is many incidents within an hour (the
per-service limit keeps its default).
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from devops_agent.config import Settings
from devops_agent.evaluation.baselines import Contender
from devops_agent.evaluation.scoring import Verdict
from devops_agent.evaluation.world import World

AUTONOMOUS = {
    "SAFETY_MODE": "false",
    "AUTO_APPROVE_MAX_RISK": "medium",
    "VALIDATE_SETTLE": "6",
    "REMEDIATION_COOLDOWN": "30",
    "MAX_ACTIONS_PER_HOUR": "1000",
    "MONITORING_INTERVAL": "3600",
    "LOG_LEVEL": "INFO",
}
LLM_SETTINGS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LLM_MODEL")
DONE = ("completed", "failed", "awaiting_approval")
# Every setting of the agent but DOCKER_HOST: the caller's own environment must not leak in.
SETTINGS = tuple(name.upper() for name in Settings.model_fields if name != "docker_host")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def llm_endpoint() -> str | None:
    """Why REASONER=llm cannot be scored here, or None when a real endpoint answers /models."""
    key, base = os.environ.get("OPENAI_API_KEY"), os.environ.get("OPENAI_BASE_URL")
    if not key or not base:
        return "OPENAI_BASE_URL and OPENAI_API_KEY are not both set"
    try:
        response = httpx.get(
            base.rstrip("/") + "/models",
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
    except httpx.HTTPError as exc:
        return f"{base}/models did not answer: {type(exc).__name__}"
    if response.status_code != 200:
        return f"{base}/models answered {response.status_code}"
    return None


class AgentServer:
    """One `devops-agent serve` process for the whole evaluation."""

    def __init__(self, workdir: Path, reasoner: str) -> None:
        self.workdir = workdir
        self.reasoner = reasoner
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.webhook_token = secrets.token_hex(16)
        self.log_path = workdir / "server.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.http = httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=30,
            trust_env=False,
        )

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith(SETTINGS)}
        env |= AUTONOMOUS | {
            "DATA_DIR": str(self.workdir / "data"),
            "API_HOST": "127.0.0.1",
            "API_PORT": str(self.port),
            "AGENT_API_TOKEN": self.token,
            "WEBHOOK_TOKEN": self.webhook_token,
            "REASONER": self.reasoner,
            # An autonomous agent on the host's engine: it acts only on the scenarios' alerts,
            # never on the engine events of the host's own watched containers.
            "WATCH_EVENTS": "false",
            "NO_PROXY": "127.0.0.1,localhost",
        }
        if self.reasoner == "llm":
            env |= {k: os.environ[k] for k in LLM_SETTINGS if os.environ.get(k)}
        return env

    def start(self) -> AgentServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "devops_agent", "serve"],
                cwd=self.workdir,
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches the evaluation, which stops it
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"devops-agent serve exited at start; see {self.log_path}")
            try:
                if self.http.get("/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"devops-agent serve did not answer /health; see {self.log_path}")

    def stop(self) -> None:
        self.http.close()
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def post(self, payload: dict[str, Any]) -> list[str]:
        response = self.http.post(
            "/webhook/alerts",
            json=payload,
            headers={"Authorization": f"Bearer {self.webhook_token}"},
        )
        if response.status_code != 202:
            raise RuntimeError(
                f"the webhook answered {response.status_code}: {response.text[:200]}"
            )
        return [str(r["run_id"]) for r in response.json()["runs"]]

    def run(self, run_id: str) -> dict[str, Any]:
        data: dict[str, Any] = self.http.get(f"/runs/{run_id}").json()
        return data


class Agent(Contender):
    """The agent behind its webhook; done when each of its runs has ended or waits for a person."""

    def __init__(self, server: AgentServer) -> None:
        self.server = server
        self.name = f"agent ({server.reasoner})"

    def begin(self, world: World) -> None:
        super().begin(world)
        self.run_ids: list[str] = []
        self.runs: dict[str, dict[str, Any]] = {}

    def alerts(self, payloads: list[dict[str, Any]]) -> None:
        for payload in payloads:
            for run_id in self.server.post(payload):
                if run_id not in self.run_ids:
                    self.run_ids.append(run_id)

    def wait(self, deadline: float) -> None:
        while True:
            self.runs = {r: self.server.run(r) for r in self.run_ids}
            if all(run.get("status") in DONE for run in self.runs.values()):
                return
            if time.monotonic() > deadline:
                return
            time.sleep(0.2)

    def verdict(self) -> Verdict:
        if not self.run_ids:
            return Verdict(said="no run", note="the webhook started no run", finished=False)
        first = self.runs.get(self.run_ids[0]) or {}
        status, outcome = first.get("status"), first.get("outcome")
        escalation = str(first.get("escalation") or "")
        diagnosis = (first.get("diagnosis") or {}).get("category")
        if diagnosis is None and escalation.startswith("unknown target"):
            diagnosis = "unknown"
        said = outcome or status
        if status == "awaiting_approval":
            said = "awaiting_approval"
            escalation = "asks a person: " + str((first.get("plan") or {}).get("why", ""))
        note = escalation or str((first.get("diagnosis") or {}).get("root_cause") or "")
        if len(self.run_ids) > 1:
            others = [self.runs.get(r) or {} for r in self.run_ids[1:]]
            note += " | other runs: " + ", ".join(
                f"{o.get('service')}: {o.get('outcome') or o.get('status')}" for o in others
            )
        return Verdict(
            escalated=status == "awaiting_approval" or outcome in ("escalated", "rejected"),
            diagnosis=diagnosis,
            said=said,
            note=note[:400],
            finished=all(r.get("status") in DONE for r in self.runs.values()),
        )
