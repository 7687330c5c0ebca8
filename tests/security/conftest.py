"""Real servers for the hostile-input suite (the tests/server harness), plus a Docker lab."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import docker
import pytest

from tests.server.conftest import Server
from tests.support.containers import Lab, ensure_test_image


@pytest.fixture(scope="session")
def docker_client() -> docker.DockerClient:
    client = docker.from_env()
    ensure_test_image(client)
    return client


@pytest.fixture(scope="module")
def lab(docker_client: docker.DockerClient) -> Iterator[Lab]:
    with Lab(docker_client) as made:
        yield made


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One safety-mode server for a module's tests."""
    srv = Server(tmp_path_factory.mktemp("server")).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Servers with their own settings, stopped after the test."""
    made: list[Server] = []

    def make(**env: str) -> Server:
        srv = Server(tmp_path / f"server{len(made)}", env=env)
        made.append(srv)
        return srv.start()

    yield make
    for srv in made:
        srv.stop()
