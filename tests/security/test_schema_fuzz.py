"""Schemathesis against the app's own OpenAPI schema, on a real server with the token.

Every operation, a bounded number of generated requests each, with valid and invalid data:
no 5xx, and every answer of a documented status matches the schema and its content type.
Driven through hypothesis directly (one test, every operation in turn) and bounded so it takes
well under two minutes.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from tests.server.conftest import Server

CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]
EXAMPLES = 20  # per operation and mode


def _operations(server: Server) -> list[Any]:
    headers = {"Authorization": f"Bearer {server.token}"}
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", headers=headers)
    return [result.ok() for result in schema.get_all_operations()]


def _fuzz(server: Server, operation: Any, mode: GenerationMode, calls: dict[str, int]) -> None:
    """Up to EXAMPLES generated requests to one operation; the first failed check raises."""
    token = server.webhook_token if operation.path == "/webhook/alerts" else server.token
    headers = {"Authorization": f"Bearer {token}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def call(case: schemathesis.Case) -> None:
        case.call_and_validate(base_url=server.url, headers=headers, checks=CHECKS, timeout=30)
        calls[operation.label] = calls.get(operation.label, 0) + 1

    try:
        call()
    except Unsatisfiable:
        # nothing to make invalid: an operation without parameters or body
        assert mode is GenerationMode.NEGATIVE, operation.label


@pytest.mark.timeout(180)
def test_every_operation_of_the_schema(server: Server) -> None:
    operations = _operations(server)
    assert len(operations) >= 20
    calls: dict[str, int] = {}
    for operation in operations:
        for mode in GenerationMode:
            _fuzz(server, operation, mode, calls)
    assert server.get("/health").status_code == 200
    assert set(calls) == {op.label for op in operations}
    print(f"\n[schemathesis] {len(operations)} operations, {sum(calls.values())} requests")
