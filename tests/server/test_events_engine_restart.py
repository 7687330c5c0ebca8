"""Nothing missed across an engine restart (issue 20): a second dockerd of the test's own (not
the engine the other tests use) stops while the agent watches it, its watched container going
down with it; when the engine is back, the watcher lists what it watches and raises the alert."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests.server.conftest import Server
from tests.server.test_events_watch import AUTONOMOUS, EXITS_3_ON_TERM, WATCH, one_run, watching
from tests.support.containers import Lab, ensure_test_image, wait_for

pytestmark = pytest.mark.docker


class Engine:
    """A dockerd on its own socket, data root, exec root and pid file."""

    def __init__(self, root: Path):
        self.root = root
        self.socket = root / "d.sock"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> docker.DockerClient:
        log = (self.root / "dockerd.log").open("ab")
        self.proc = subprocess.Popen(
            [
                "dockerd",
                f"--host={self.host}",
                f"--data-root={self.root / 'data'}",
                f"--exec-root={self.root / 'x'}",
                f"--pidfile={self.root / 'd.pid'}",
                "--iptables=false",
                "--ip-masq=false",
                "--bridge=none",
                "--storage-driver=vfs",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()

        def answers() -> docker.DockerClient | None:
            try:
                client = docker.DockerClient(base_url=self.host, timeout=120)
                client.ping()
                return client
            except Exception:
                return None

        return wait_for(answers, timeout=120, what="the second dockerd")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=120)


@pytest.fixture
def engine() -> Iterator[Engine]:
    root = Path(tempfile.mkdtemp(prefix="evd", dir="/tmp"))  # short: unix socket paths
    made = Engine(root)
    try:
        yield made
    finally:
        made.stop()
        shutil.rmtree(root, ignore_errors=True)


def test_a_container_that_went_down_with_its_engine_is_seen_when_the_engine_is_back(
    make_server: Callable[..., Server], engine: Engine
) -> None:
    client = engine.start()
    ensure_test_image(client)
    lab = Lab(client)
    srv = make_server(**AUTONOMOUS, WATCH_EVENTS="true", DOCKER_HOST=engine.host)
    first = watching(srv)
    app = lab.start(lab._name("engine"), labels=WATCH, command=EXITS_3_ON_TERM)
    client.close()

    engine.stop()  # the engine stops its containers: this one exits 3
    wait_for(lambda: not srv.get("/status").json()["watcher"]["connected"], timeout=120)
    client = engine.start()
    lab.client = client
    assert lab.container(app).attrs["State"]["ExitCode"] == 3
    assert lab.container(app).status == "exited"

    run = srv.wait_status(one_run(srv, app.name), "completed")
    assert run["outcome"] == "resolved", run
    assert run["alerts"][0]["alertname"] == "ContainerDied"
    assert run["alerts"][0]["labels"]["exit_code"] == "3"
    assert lab.container(app).status == "running"
    status = srv.get("/status").json()["watcher"]
    assert status["connected"] and status["connects"] >= first["connects"] + 1
    assert status["engine"] == first["engine"]  # the engine's own ID survives its restart
    logs = srv.logs()
    assert logs.count("unreachable") == 1, logs  # one line while the engine is away
    assert "is back" in logs
    lab.cleanup()
    client.close()
