"""Shared fixtures. Docker tests fail (never skip) when no engine answers."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import docker
import psycopg
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


# Under pytest-xdist (scripts/test.sh: -n 2 --dist loadgroup) each test file runs on one
# worker, as with --dist loadfile, except that the files whose servers watch the shared engine's
# events of every `devops-agent.watch=true` container run on the same worker, one after the
# other: a watching server would otherwise act on another file's watched containers.
SHARED_ENGINE_WATCHERS = "engine-events"
WATCHING_FILES = (
    "tests/server/test_events_watch.py",
    "tests/replicas/test_events_watch.py",
    "tests/server/test_demo.py",  # its containers and background service share the engine too
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("xdist_group") is not None:
            continue
        path = item.nodeid.split("::", 1)[0]
        group = SHARED_ENGINE_WATCHERS if path in WATCHING_FILES else path
        item.add_marker(pytest.mark.xdist_group(group))


POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
# Every process on PostgreSQL must sign the shared audit chain with the same key (AUDIT_KEY is
# required there): the servers and replicas that tests start on PostgreSQL all get this one.
PG_AUDIT_KEY = "test-audit-key-" + secrets.token_hex(16)


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A new PostgreSQL database (its URL), dropped afterwards; fails, never skips, without one."""
    name = f"agent_test_{secrets.token_hex(4)}"
    try:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"these tests need PostgreSQL on 127.0.0.1:5432 (scripts/setup.sh starts it): {exc}"
        )
    try:
        yield f"postgresql://postgres@127.0.0.1:5432/{name}"
    finally:
        with psycopg.connect(POSTGRES_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test, dropped afterwards (fails, never skips)."""
    with fresh_pg_database() as url:
        yield url
