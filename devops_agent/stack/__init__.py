"""`devops-agent stack up|down|status`: the monitoring stack of `deploy/` on this machine.

Runs the Debian binaries `prometheus` and `prometheus-alertmanager` on loopback ports, with
demo intervals (scrape and evaluation every 2s, group_wait 1s, group_interval 2s), so that a
fault reaches the agent's webhook within seconds instead of the minutes of production defaults.

The configs are rendered into one directory (DATA_DIR/stack by default) from the same alert
rules users copy (`deploy/prometheus/alerts.yml`, with every `for:` set to the demo value), and
the PIDs of what was started are recorded there, so `down` stops exactly those processes and
nothing else. Scrape targets are file_sd files in `targets/`: adding a service (`add_target`)
needs no restart, because Prometheus watches the directory.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from devops_agent.config import Settings
from devops_agent.server.auth import load_api_token
from devops_agent.stack.config import (
    StackError,
    StackSpec,
    add_target,
    alertmanager_config,
    prometheus_config,
    remove_target,
    render,
)
from devops_agent.stack.processes import down, running, status, up

__all__ = [
    "StackError",
    "StackSpec",
    "add_target",
    "alertmanager_config",
    "command",
    "down",
    "parse_target",
    "prometheus_config",
    "remove_target",
    "render",
    "running",
    "status",
    "up",
]


def parse_target(text: str) -> tuple[str, str, str]:
    """`name=host:port[/metrics/path]` -> (name, host:port, path)."""
    name, sep, rest = text.partition("=")
    address, slash, path = rest.partition("/")
    if not sep or not name or ":" not in address:
        raise StackError(f"target {text!r} is not name=host:port[/path]")
    return name, address, "/" + path if slash else "/metrics"


def command(
    settings: Settings,
    action: str,
    *,
    directory: Path | None = None,
    prometheus_port: int = 9090,
    alertmanager_port: int = 9093,
    targets: list[str] | None = None,
    with_agent: bool = False,
) -> int:
    """`devops-agent stack up|down|status`; the exit code."""
    directory = (directory or settings.data_dir / "stack").resolve()
    if action == "down":
        stopped = down(directory)
        print(f"stopped: {', '.join(stopped) or 'nothing was running'}")
        return 0
    if action == "status":
        found = status(directory)
        print(json.dumps(found, indent=2))
        return 0 if any(p["running"] for p in found["processes"].values()) else 1
    host = settings.api_host if settings.api_host not in ("0.0.0.0", "::") else "127.0.0.1"
    webhook = settings.webhook_token.get_secret_value() if settings.webhook_token else None
    spec = StackSpec(
        directory=directory,
        agent_url=f"http://{host}:{settings.api_port}",
        webhook_token=webhook,
        agent_api_token=load_api_token(settings),
        prometheus_port=prometheus_port,
        alertmanager_port=alertmanager_port,
    )
    try:
        parsed = [parse_target(t) for t in targets or []]
        directory.mkdir(parents=True, exist_ok=True)
        for name, address, path in parsed:
            add_target(directory, name, address, path)
        found = up(spec, with_agent=with_agent, agent_env={"PROMETHEUS_URL": spec.prometheus_url})
    except StackError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for name, info in found["processes"].items():
        print(f"{name:>12}  pid {info['pid']}  {info['url']}")
    print(f"configs and logs in {directory}; add scrape targets as JSON files in targets/")
    if not with_agent:
        print(f"start the agent with PROMETHEUS_URL={spec.prometheus_url} devops-agent serve")
    return 0
