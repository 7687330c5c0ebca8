"""Time to recover, end to end, with the real Prometheus and Alertmanager (demo intervals).

    .venv/bin/python bench/mttr.py [--repeats 3]

Starts Debian's `prometheus` and `prometheus-alertmanager` with `devops_agent.stack` (scrape and
evaluation 2s, group_wait 1s, group_interval 2s) and `devops-agent serve` (safety off, restarts
allowed), all on loopback ports in a temp dir. For each repeat it starts a fresh example
container (tests/support's busybox app plus a metrics CGI), waits until Prometheus scrapes it,
then breaks it and times, from the moment of the fault:

- detection: until the agent's webhook stored the alert (the run's created_at);
- agent: from the webhook to the first action's start (triage, evidence, diagnosis, plan, policy);
  "evidence" is the part of it spent in root_cause (on a hang, mostly the quick health probe's
  PROBE_QUICK_TIMEOUT, which Prometheus' failing health check confirms: nodes/hang.py);
- action: the action itself (restart_service);
- validation: from the action's end to the run's end (probing until healthy, learn);
- healthy: until this script's own probe of the health URL answers 200 again.

Faults: `crash` (the process panics and exits) and `hang` (running, its health check never
answers), and, for comparison, Docker's own `--restart always` on the same crash (no agent
involved) and on the hang (which it cannot see: the process never exits).

Event detection (issue 20): the same faults on containers labelled `devops-agent.watch=true`
(not scraped by Prometheus), the hang with a Docker HEALTHCHECK (every 1 s, 1 s timeout, one
retry). Timed from the fault: Docker's own detection (the event alert's startsAt: the die, or the
HEALTHCHECK turning unhealthy), the run's creation, the first action's start, healthy again, and
settled (the run's end, after VALIDATE_SETTLE, 5 s here, for every path).

Needs a Docker engine and the two Debian packages (scripts/setup.sh).
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import docker
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support: the fault lab

from devops_agent import stack  # noqa: E402
from tests.stack.example import METRICS_PATH, install_metrics  # noqa: E402
from tests.support.containers import Lab, Started, free_port, probe, wait_for  # noqa: E402

DEADLINE = 120.0
SETTLE = 5  # VALIDATE_SETTLE of the agent, seconds
SECOND = 1_000_000_000
HEALTHCHECK = {
    "test": [
        "CMD-SHELL",
        "timeout 1 /www/cgi-bin/health >/tmp/hc 2>&1; grep -q 'Status: 200' /tmp/hc",
    ],
    "interval": SECOND,
    "timeout": 2 * SECOND,
    "retries": 1,
}
HANG_WATCH = 20.0  # seconds Docker's restart policy is given to notice a hang (it never does)
TOKEN = secrets.token_hex(16)
HOOK_TOKEN = secrets.token_hex(16)


def ts(value: str | None) -> float:
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp()


class Agent:
    def __init__(self, workdir: Path, prometheus_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("API_", "DATA_DIR"))}
        env.update(
            {
                "DATA_DIR": str(workdir / "data"),
                "API_PORT": str(self.port),
                "AGENT_API_TOKEN": TOKEN,
                "WEBHOOK_TOKEN": HOOK_TOKEN,
                "SAFETY_MODE": "false",
                "AUTO_APPROVE_MAX_RISK": "medium",
                "REASONER": "rules",
                "LOG_LEVEL": "WARNING",
                "MONITORING_INTERVAL": "3600",
                "PROMETHEUS_URL": prometheus_url,
                "MAX_ACTIONS_PER_SERVICE_PER_HOUR": "100",
                "MAX_ACTIONS_PER_HOUR": "1000",
                "VALIDATE_SETTLE": str(SETTLE),
                "WATCH_EVENTS": "true",
            }
        )
        log = (workdir / "agent.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devops_agent", "serve"],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {TOKEN}"}, trust_env=False
        )
        wait(lambda: self._healthy(), "the agent to start")

    def _healthy(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError("the agent exited at start; see agent.log")
        try:
            return self.http.get("/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def run_of(self, service: str) -> dict[str, Any] | None:
        runs = self.http.get("/runs", params={"service": service}).json()["runs"]
        return runs[0] if runs else None

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def wait(predicate: Any, what: str, deadline: float = DEADLINE, every: float = 0.05) -> Any:
    """Poll `predicate` every `every` seconds (fine enough to time recoveries)."""
    return wait_for(predicate, deadline, every, what)


def scraped_up(spec: stack.StackSpec, service: str) -> bool:
    response = httpx.get(
        f"{spec.prometheus_url}/api/v1/query",
        params={"query": f'up{{service="{service}"}} == 1'},
        trust_env=False,
    )
    return bool(response.json()["data"]["result"])


def healthy_again(url: str, since: float) -> float:
    """Seconds from `since` until the health URL answers 200 (probing every 50 ms)."""
    wait(lambda: probe(url, timeout=0.5) == 200, f"{url} healthy", every=0.05)
    return time.time() - since


def break_it(lab: Lab, app: Started, fault: str) -> float:
    t0 = time.time()
    lab.exec(app, "touch", f"/run/{fault}")
    return t0


def agent_repeat(lab: Lab, spec: stack.StackSpec, agent: Agent, fault: str) -> dict[str, float]:
    app = lab.healthy(f"mttr-{fault}")
    stack.add_target(spec.directory, app.name, install_metrics(lab, app), METRICS_PATH)
    wait(lambda: scraped_up(spec, app.name), f"{app.name} scraped", every=0.2)
    t0 = break_it(lab, app, fault)
    # The fault is real once the health URL fails; only then can "healthy again" be timed.
    wait(lambda: probe(app.health_url, timeout=0.5) != 200, f"the {fault}")
    healthy = healthy_again(app.health_url, t0)
    run = wait(lambda: agent.run_of(app.name), "the run")
    run = wait(
        lambda: (
            (r := agent.http.get(f"/runs/{run['run_id']}").json())["status"] == "completed" and r
        ),
        "the run to end",
    )
    stack.remove_target(spec.directory, app.name)
    if run["outcome"] != "resolved" or not run["actions"]:
        raise RuntimeError(f"{fault}: run ended {run['outcome']}: {run.get('escalation')}")
    first, last = run["actions"][0], run["actions"][-1]
    created = ts(run["created_at"])
    return {
        "detection": created - t0,
        "agent": ts(first["started_at"]) - created,
        "evidence": root_cause_seconds(agent, run["run_id"]),
        "action": ts(last["finished_at"]) - ts(first["started_at"]),
        "validation": ts(run["updated_at"]) - ts(last["finished_at"]),
        "healthy": healthy,
        "total": ts(run["updated_at"]) - t0,
    }


def ended(agent: Agent, service: str) -> dict[str, Any]:
    run = wait(lambda: agent.run_of(service), "the run")
    return wait(  # type: ignore[no-any-return]
        lambda: (
            (r := agent.http.get(f"/runs/{run['run_id']}").json())["status"] == "completed" and r
        ),
        "the run to end",
    )


def events_repeat(lab: Lab, agent: Agent, fault: str) -> dict[str, float]:
    """The fault on a watched container: the engine's event starts the run."""
    kwargs: dict[str, Any] = {"healthcheck": HEALTHCHECK} if fault == "hang" else {}
    app = lab.start(
        f"mttr-events-{fault}-{secrets.token_hex(3)}",
        labels={"devops-agent.watch": "true"},
        **kwargs,
    )
    if fault == "hang":
        container = lab.container(app)
        wait(
            lambda: (
                (container.reload() or container.attrs["State"]["Health"]["Status"]) == "healthy"
            ),
            "Docker's first healthy check",
        )
    t0 = break_it(lab, app, fault)
    wait(lambda: probe(app.health_url, timeout=0.5) != 200, f"the {fault}")
    healthy = healthy_again(app.health_url, t0)
    run = ended(agent, app.name)
    if run["outcome"] != "resolved" or not run["actions"]:
        raise RuntimeError(f"events {fault}: run ended {run['outcome']}: {run.get('escalation')}")
    return {
        "engine": ts(run["alerts"][0]["startsAt"]) - t0,
        "detection": ts(run["created_at"]) - t0,
        "action": ts(run["actions"][0]["started_at"]) - t0,
        "healthy": healthy,
        "settled": ts(run["updated_at"]) - t0,
    }


def root_cause_seconds(agent: Agent, run_id: str) -> float:
    """How long root_cause took (gathering evidence, then the reasoner), from the checkpoints."""
    checkpoints = agent.http.get(f"/runs/{run_id}/history").json()["checkpoints"]
    first: dict[str, float] = {}
    for checkpoint in checkpoints:
        first.setdefault(str(checkpoint["node"]), ts(checkpoint["time"]))
    return first["root_cause"] - first["triage"]


def docker_repeat(lab: Lab, fault: str) -> float | None:
    """Fault to healthy with `--restart always` and no agent; None when it never recovers."""
    app = lab.start(
        f"mttr-docker-{fault}-{secrets.token_hex(3)}", restart_policy={"Name": "always"}
    )
    t0 = break_it(lab, app, fault)
    wait(lambda: probe(app.health_url, timeout=0.5) != 200, "the fault")
    try:
        return wait(
            lambda: probe(app.health_url, timeout=0.5) == 200 and time.time() - t0,
            "Docker's restart",
            deadline=HANG_WATCH if fault == "hang" else DEADLINE,
        )
    except TimeoutError:
        return None


def median(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    client = docker.from_env()
    workdir = Path(tempfile.mkdtemp(prefix="mttr-"))
    lab = Lab(client)
    agent: Agent | None = None
    prometheus_port = free_port()
    spec = stack.StackSpec(
        directory=workdir / "stack",
        agent_url="http://127.0.0.1:0",  # set below, once the agent has its port
        webhook_token=HOOK_TOKEN,
        prometheus_port=prometheus_port,
        alertmanager_port=free_port(),
    )
    try:
        agent = Agent(workdir, spec.prometheus_url)
        spec.agent_url = agent.url
        stack.up(spec)
        figures: dict[str, list[dict[str, float]]] = {"crash": [], "hang": []}
        for fault in figures:
            for _ in range(args.repeats):
                figures[fault].append(agent_repeat(lab, spec, agent, fault))
        event_figures: dict[str, list[dict[str, float]]] = {
            fault: [events_repeat(lab, agent, fault) for _ in range(args.repeats)]
            for fault in ("crash", "hang")
        }
        docker_figures = {
            fault: [docker_repeat(lab, fault) for _ in range(args.repeats)]
            for fault in ("crash", "hang")
        }
    finally:
        stack.down(spec.directory)
        if agent is not None:
            agent.stop()
        lab.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)

    print(
        f"MTTR on {platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}; "
        f"Prometheus scrape/eval 2s, Alertmanager group_wait 1s; median of {args.repeats} (s)"
    )
    phases = ("detection", "agent", "evidence", "action", "validation", "total", "healthy")
    print(f"{'':24}" + "".join(f"{p:>11}" for p in phases))
    for fault, rows in figures.items():
        cells = "".join(f"{median([r[p] for r in rows]):>11}" for p in phases)
        print(f"{'agent, ' + fault:24}{cells}")
    for fault, values in docker_figures.items():
        seen = [v for v in values if v is not None]
        cell = median(seen) if len(seen) == len(values) else f"never in {HANG_WATCH:g}s"
        print(f"{'docker --restart, ' + fault:24}{'':>66}{cell:>11}")
    print(f"\nEvent detection (docker events; VALIDATE_SETTLE={SETTLE}s), fault to ... (s):")
    columns = ("engine", "detection", "action", "healthy", "settled")
    print(f"{'':24}" + "".join(f"{c:>11}" for c in columns))
    for fault, rows in event_figures.items():
        cells = "".join(f"{median([r[c] for r in rows]):>11}" for c in columns)
        print(f"{'agent (events), ' + fault:24}{cells}")
    restart = [v for v in docker_figures["crash"] if v is not None]
    if restart:
        crash = statistics.median(r["healthy"] for r in event_figures["crash"])
        print(
            f"crash by events: {crash / statistics.median(restart):.1f}x Docker's restart policy "
            "(target: within 2x)"
        )
    hang = event_figures["hang"]
    over = statistics.median(r["healthy"] - r["engine"] for r in hang)
    print(
        f"hang by events: healed {over:.2f} s after the HEALTHCHECK said unhealthy (target < 1 s)"
    )
    for fault, rows in figures.items():
        share = statistics.median(r["agent"] / r["total"] for r in rows)
        worst = max(r["agent"] for r in rows)
        print(f"{fault}: agent share {share:.1%} of the total (worst {worst:.2f} s; target < 1 s)")


if __name__ == "__main__":
    main()
