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

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from devops_agent.config import Settings
from devops_agent.server.auth import load_api_token

PROMETHEUS_BIN = "prometheus"
ALERTMANAGER_BIN = "prometheus-alertmanager"
DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
STATE_FILE = "stack.json"


class StackError(Exception):
    """The stack could not be started or stopped; the message is meant for the operator."""


@dataclass(frozen=True)
class Intervals:
    """How fast the stack notices: the demo defaults, or anything a user passes."""

    scrape: str = "2s"
    scrape_timeout: str = "1500ms"
    evaluation: str = "2s"
    rule_for: str = "0s"
    group_wait: str = "1s"
    group_interval: str = "2s"
    repeat: str = "1h"


@dataclass
class StackSpec:
    """What to run and where. `agent_url` is where Alertmanager sends the webhook."""

    directory: Path
    agent_url: str = "http://127.0.0.1:8001"
    webhook_token: str | None = None
    agent_api_token: str | None = None  # to scrape the agent's /metrics; None: not scraped
    prometheus_port: int = 9090
    alertmanager_port: int = 9093
    rules_file: Path = RULES
    intervals: Intervals = field(default_factory=Intervals)

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.alertmanager_port}"


# -- configs ------------------------------------------------------------------------------


def _secret(path: Path, value: str) -> Path:
    """Write a credential file readable only by us (Prometheus and Alertmanager read it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return path


def demo_rules(rules_file: Path, rule_for: str) -> dict[str, Any]:
    """The users' alert rules with every `for:` replaced by the demo value."""
    try:
        rules: dict[str, Any] = yaml.safe_load(rules_file.read_text())
    except OSError as exc:
        raise StackError(f"cannot read the alert rules {rules_file}: {exc.strerror}") from None
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            if "alert" in rule:
                rule["for"] = rule_for
    return rules


def prometheus_config(spec: StackSpec) -> dict[str, Any]:
    i = spec.intervals
    scrapes: list[dict[str, Any]] = [
        {
            "job_name": "services",
            "scrape_timeout": i.scrape_timeout,
            "file_sd_configs": [{"files": ["targets/*.json"], "refresh_interval": "2s"}],
        }
    ]
    if spec.agent_api_token:
        address = spec.agent_url.split("://", 1)[-1].rstrip("/")
        scrapes.append(
            {
                "job_name": "devops-agent",
                "scrape_timeout": i.scrape_timeout,
                "authorization": {"credentials_file": str(spec.directory / "agent-api-token")},
                "static_configs": [{"targets": [address], "labels": {"service": "devops-agent"}}],
            }
        )
    return {
        "global": {"scrape_interval": i.scrape, "evaluation_interval": i.evaluation},
        "rule_files": ["alerts.yml"],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"127.0.0.1:{spec.alertmanager_port}"]}]}
            ]
        },
        "scrape_configs": scrapes,
    }


def alertmanager_config(spec: StackSpec) -> dict[str, Any]:
    i = spec.intervals
    webhook: dict[str, Any] = {
        "url": spec.agent_url.rstrip("/") + "/webhook/alerts",
        "send_resolved": True,
        "max_alerts": 100,
    }
    if spec.webhook_token:
        credentials = str(spec.directory / "webhook-token")
        webhook["http_config"] = {"authorization": {"credentials_file": credentials}}
    return {
        "route": {
            "receiver": "devops-agent",
            "group_by": ["alertname", "service"],
            "group_wait": i.group_wait,
            "group_interval": i.group_interval,
            "repeat_interval": i.repeat,
            "routes": [{"receiver": "people", "matchers": ['component="devops-agent"']}],
        },
        "receivers": [{"name": "devops-agent", "webhook_configs": [webhook]}, {"name": "people"}],
    }


def render(spec: StackSpec) -> None:
    """Write every config file of the stack into `spec.directory`."""
    d = spec.directory
    (d / "targets").mkdir(parents=True, exist_ok=True)
    if spec.webhook_token:
        _secret(d / "webhook-token", spec.webhook_token)
    if spec.agent_api_token:
        _secret(d / "agent-api-token", spec.agent_api_token)
    files = {
        "alerts.yml": demo_rules(spec.rules_file, spec.intervals.rule_for),
        "prometheus.yml": prometheus_config(spec),
        "alertmanager.yml": alertmanager_config(spec),
    }
    for name, content in files.items():
        (d / name).write_text(yaml.safe_dump(content, sort_keys=False))


def add_target(directory: Path, service: str, address: str, metrics_path: str = "/metrics") -> Path:
    """Scrape `address` (host:port) as `service`; Prometheus picks the file up by itself."""
    path = directory / "targets" / f"{service}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = [
        {"targets": [address], "labels": {"service": service, "__metrics_path__": metrics_path}}
    ]
    tmp = path.with_suffix(".tmp")  # written whole, then renamed: never read half-written
    tmp.write_text(json.dumps(entry))
    tmp.replace(path)
    return path


def remove_target(directory: Path, service: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (directory / "targets" / f"{service}.json").unlink()


# -- processes ----------------------------------------------------------------------------


def _binary(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise StackError(f"{name} is not installed (apt-get install {name}, or scripts/setup.sh)")
    return found


def commands(spec: StackSpec) -> dict[str, list[str]]:
    d = spec.directory
    return {
        "prometheus": [
            _binary(PROMETHEUS_BIN),
            f"--config.file={d / 'prometheus.yml'}",
            f"--storage.tsdb.path={d / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{spec.prometheus_port}",
            "--storage.tsdb.retention.time=1d",
        ],
        "alertmanager": [
            _binary(ALERTMANAGER_BIN),
            f"--config.file={d / 'alertmanager.yml'}",
            f"--storage.path={d / 'alertmanager-data'}",
            f"--web.listen-address=127.0.0.1:{spec.alertmanager_port}",
            "--cluster.listen-address=",  # no HA gossip port: one instance on loopback
        ],
    }


def agent_command() -> list[str]:
    return [sys.executable, "-m", "devops_agent", "serve"]


def _spawn(name: str, argv: list[str], directory: Path, env: dict[str, str] | None) -> int:
    with (directory / f"{name}.log").open("ab") as log:
        process = subprocess.Popen(
            argv,
            cwd=Path.cwd() if name == "agent" else directory,  # the agent reads ./.env
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # outlives `stack up`; `stack down` stops it by PID
        )
    return process.pid


def _ready(url: str, pid: int, name: str, directory: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            log = (directory / f"{name}.log").read_text(errors="replace")[-2000:]
            raise StackError(f"{name} exited at start; its log ends:\n{log}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        time.sleep(0.1)
    raise StackError(f"{name} did not answer {url} within {timeout:g}s")


def up(
    spec: StackSpec,
    *,
    with_agent: bool = False,
    agent_env: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> dict[str, Any]:
    """Render the configs, start Prometheus and Alertmanager (and the agent when asked), wait
    until each answers, and record their PIDs. Raises StackError (having stopped what it
    started) when one of them does not come up."""
    if running(spec.directory):
        raise StackError(f"a stack already runs from {spec.directory}: `stack down` first")
    render(spec)
    started: dict[str, dict[str, Any]] = {}
    bases = {"prometheus": spec.prometheus_url, "alertmanager": spec.alertmanager_url}
    ready_paths = {"prometheus": "/-/ready", "alertmanager": "/-/ready", "agent": "/health"}
    plan = commands(spec)
    if with_agent:
        plan["agent"] = agent_command()
        bases["agent"] = spec.agent_url.rstrip("/")
    try:
        for name, argv in plan.items():
            env = {**os.environ, **(agent_env or {})} if name == "agent" else None
            pid = _spawn(name, argv, spec.directory, env)
            started[name] = {"pid": pid, "argv": argv, "url": bases[name]}
            _write_state(spec, started)
        for name, info in started.items():
            _ready(bases[name] + ready_paths[name], info["pid"], name, spec.directory, timeout)
    except BaseException:
        down(spec.directory)
        raise
    return status(spec.directory)


def _write_state(spec: StackSpec, processes: dict[str, dict[str, Any]]) -> None:
    state = {"spec": {**asdict(spec), "directory": str(spec.directory)}, "processes": processes}
    (spec.directory / STATE_FILE).write_text(json.dumps(state, indent=2, default=str))


def _read_state(directory: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((directory / STATE_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):  # a zombie child (of this process) is gone too
        if Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z"):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)
            return False
    return True


def _ours(pid: int, argv: list[str]) -> bool:
    """The PID still runs what we started (PIDs are reused): compare the command line."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return _alive(pid)  # no /proc: trust the PID
    return bool(cmdline) and cmdline[0].decode(errors="replace") == argv[0]


def running(directory: Path) -> dict[str, int]:
    """The recorded processes that still run, by name."""
    processes = _read_state(directory).get("processes", {})
    return {
        name: info["pid"]
        for name, info in processes.items()
        if _alive(info["pid"]) and _ours(info["pid"], info["argv"])
    }


def down(directory: Path, timeout: float = 10.0) -> list[str]:
    """Stop the processes `up` recorded (SIGTERM, then SIGKILL after `timeout`); their names."""
    alive = running(directory)
    for pid in alive.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in alive.values()) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in alive.values():
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        (directory / STATE_FILE).unlink()
    return sorted(alive)


def status(directory: Path) -> dict[str, Any]:
    """What runs from `directory`, with each process' PID and URL."""
    state = _read_state(directory)
    alive = running(directory)
    return {
        "directory": str(directory),
        "processes": {
            name: {"pid": info["pid"], "url": info["url"], "running": name in alive}
            for name, info in state.get("processes", {}).items()
        },
    }


# -- the command line ---------------------------------------------------------------------


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
