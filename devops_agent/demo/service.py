"""The service the demo starts when none answers: `devops-agent serve` on the embedded defaults,
in the background, with a DATA_DIR of its own (DATA_DIR/demo/service), recorded in
DATA_DIR/demo/service.json so that the next demo finds it (and its token) and `--cleanup` stops
exactly that process.

"Embedded defaults": none of the user's settings reach it (no `.env`: it runs in its own
directory; the environment's settings are dropped, but DOCKER_HOST), so it is what a fresh
install runs: SQLite, the rules reasoner, the Docker backend, safety mode on.
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
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from devops_agent.config import Settings
from devops_agent.demo.image import DemoError

STATE_FILE = "service.json"
TOKEN_FILE = "api-token"  # noqa: S105 (a file name, not a secret)
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Background:
    """A service the demo started."""

    pid: int
    url: str
    data_dir: str
    log: str

    @property
    def token_file(self) -> Path:
        return Path(self.data_dir) / TOKEN_FILE


def demo_dir(settings: Settings) -> Path:
    """Where the demo keeps what it made (DATA_DIR/demo)."""
    return Path(settings.data_dir).resolve() / "demo"


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether a devops-agent answers GET /health at `url`."""
    try:
        response = httpx.get(f"{url}/health", timeout=timeout, trust_env=False)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) still has a pid: read its state where /proc exists.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    return True


def _ours(pid: int) -> bool:
    """Whether `pid` is still a `devops_agent serve` (not a recycled pid)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return _alive(pid)  # no /proc: trust the recorded pid
    return b"devops_agent" in argv and b"serve" in argv


def recorded(settings: Settings) -> Background | None:
    """The background service the demo started, while it still runs."""
    path = demo_dir(settings) / STATE_FILE
    try:
        found = Background(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return found if _alive(found.pid) and _ours(found.pid) else None


def _environment(data_dir: Path, url: str) -> dict[str, str]:
    parts = urlsplit(url)
    dropped = {name.upper() for name in Settings.model_fields if name != "docker_host"}
    env = {k: v for k, v in os.environ.items() if k.upper() not in dropped}
    env.update(
        {
            "DATA_DIR": str(data_dir),
            "API_HOST": parts.hostname or "127.0.0.1",
            "API_PORT": str(parts.port or 80),
            # The demo's own service answers the demo's alerts, not the events of other
            # containers on the engine that opted in to a real agent's watching.
            "WATCH_EVENTS": "false",
            "NO_PROXY": "127.0.0.1,localhost",
        }
    )
    return env


def start(settings: Settings, url: str) -> Background:
    """Start `devops-agent serve` at `url` (a local address) and wait until it answers."""
    parts = urlsplit(url)
    if parts.hostname not in LOCAL_HOSTS or not parts.port:
        raise DemoError(
            f"no service answers at {url}, and the demo starts one only on a local address with "
            "a port: start it there (devops-agent serve), or pass --url"
        )
    base = demo_dir(settings)
    data_dir = base / "service"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = base / "service.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devops_agent", "serve"],
            cwd=data_dir,  # no .env of the user's is read
            env=_environment(data_dir, url),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # it outlives the demo (and its terminal's Ctrl-C)
        )
    found = Background(pid=proc.pid, url=url, data_dir=str(data_dir), log=str(log))
    (base / STATE_FILE).write_text(json.dumps(asdict(found)))
    deadline = time.monotonic() + START_TIMEOUT
    while not answers(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            (base / STATE_FILE).unlink(missing_ok=True)
            raise DemoError(f"the service did not start ({log}): {tail[0]}")
        time.sleep(0.2)
    return found


def stop(settings: Settings, timeout: float = 20.0) -> Background | None:
    """Stop the background service the demo started (SIGTERM, then SIGKILL); what it was."""
    found = recorded(settings)
    if found is not None:
        os.kill(found.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(found.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _alive(found.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(found.pid, signal.SIGKILL)
    return found


def forget(settings: Settings) -> None:
    """Delete what the demo kept (the state file, the background service's DATA_DIR)."""
    shutil.rmtree(demo_dir(settings), ignore_errors=True)
