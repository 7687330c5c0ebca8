"""Shared fixtures. Docker tests fail (never skip) when no engine answers."""

from __future__ import annotations

from collections.abc import Iterator

import docker
import pytest

from tests.support.containers import Lab, ensure_test_image


@pytest.fixture(scope="session")
def docker_client() -> Iterator[docker.DockerClient]:
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:  # the suite must fail loudly, not skip
        pytest.fail(
            f"these tests need a running Docker engine (scripts/setup.sh starts one): {exc}"
        )
    ensure_test_image(client)
    yield client
    client.close()


@pytest.fixture
def lab(docker_client: docker.DockerClient) -> Iterator[Lab]:
    with Lab(docker_client) as created:
        yield created
