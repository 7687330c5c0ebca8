"""The registry's declared operations and its parameter validation."""

from __future__ import annotations

from devops_agent.operations import OPERATIONS
from devops_agent.tools.fake import FakeBackend, FakeService
from devops_agent.tools.registry import Registry


def test_the_six_operations_with_their_risk() -> None:
    assert {n: (s.mutating, s.risk) for n, s in OPERATIONS.items()} == {
        "health_check": (False, "low"),
        "get_logs": (False, "low"),
        "check_resources": (False, "low"),
        "restart_service": (True, "medium"),
        "scale_service": (True, "medium"),
        "execute_command": (True, "high"),
    }
    assert OPERATIONS["scale_service"].inverse == "scale_service"
    assert all(s.description for s in OPERATIONS.values())


async def test_bad_operations_and_parameters_are_typed_results() -> None:
    registry = Registry(FakeBackend([FakeService("web")]))
    unknown = await registry.run("rm_rf", {"target": "web"})
    assert (unknown.ok, unknown.error) == (
        False,
        "invalid",
    ) and "unknown operation" in unknown.message
    too_many = await registry.run("get_logs", {"target": "web", "lines": 5001})
    assert too_many.error == "invalid" and "lines" in too_many.message
    extra = await registry.run("health_check", {"target": "web", "command": "sh -c reboot"})
    assert extra.error == "invalid" and "command" in extra.message
    shell = await registry.run("execute_command", {"target": "web", "argv": "rm -rf /"})
    assert shell.error == "invalid" and "argv" in shell.message
    missing = await registry.run("health_check", {"target": "nope"})
    assert missing.error == "not_found"
    ok = await registry.run("health_check", {"target": "web"})
    assert ok.ok and ok.data["healthy"] is True
