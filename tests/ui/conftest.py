"""Real servers for the browser tests (the tests/server harness)."""

from __future__ import annotations

from tests.server.conftest import make_server  # noqa: F401 (the same harness)
