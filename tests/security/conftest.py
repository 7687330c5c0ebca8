"""Real servers for the hostile-input suite (the tests/server harness), plus a Docker lab."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from tests.server.conftest import make_server, server  # noqa: F401 (the same harness)
from tests.support.containers import Lab


@pytest.fixture(scope="module")
def lab(docker_client: docker.DockerClient) -> Iterator[Lab]:
    with Lab(docker_client) as made:
        yield made
