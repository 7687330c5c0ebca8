"""Starting, watching and stopping the stack's processes (their PIDs recorded in the stack's
directory, so `down` stops exactly those and nothing else)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

from devops_agent.stack.config import (
    ALERTMANAGER_BIN,
    PROMETHEUS_BIN,
    STATE_FILE,
    StackError,
    StackSpec,
    render,
)


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
