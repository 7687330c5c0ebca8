"""execute_command on Docker: an argv (never a shell) with its own timeout. Past it the process is
killed, when the engine is local (its host pid); else the result says it may still be running."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from typing import Any

from docker.api import APIClient
from docker.models.containers import Container

from devops_agent.operations import ExecuteCommandParams
from devops_agent.tools.registry import OperationResult

OUTPUT_CAP = 16_384
EXEC_KILL_WAIT = 5.0


def run_command(
    api: APIClient, container: Container, params: ExecuteCommandParams, kill: bool
) -> OperationResult:
    exec_id = api.exec_create(container.id, params.argv, stdout=True, stderr=True)["Id"]
    box: dict[str, Any] = {}
    reader = threading.Thread(
        target=lambda: box.update(output=api.exec_start(exec_id)), daemon=True
    )
    reader.start()
    reader.join(params.timeout)
    timed_out = reader.is_alive()
    killed = False
    if timed_out:
        killed = kill and _kill(api.exec_inspect(exec_id).get("Pid") or 0)
        reader.join(EXEC_KILL_WAIT)
    info = api.exec_inspect(exec_id)
    text = bytes(box.get("output") or b"").decode("utf-8", "replace")[-OUTPUT_CAP:]
    exit_code = info.get("ExitCode")
    data = {"exit_code": exit_code, "output": text}
    if timed_out:
        still = bool(info.get("Running"))
        data["in_flight"] = still
        how = "killed" if killed and not still else "it may still be running in the container"
        return OperationResult(
            operation="execute_command",
            target=params.target,
            ok=False,
            error="timeout",
            message=f"no exit within its timeout of {params.timeout}s: {how}",
            data=data,
        )
    return OperationResult(
        operation="execute_command",
        target=params.target,
        ok=exit_code == 0,
        error=None if exit_code == 0 else "failed",
        message=f"exit code {exit_code}",
        data=data,
    )


def _kill(pid: int) -> bool:
    """Kill a command that outlived its timeout (its host pid: only on a local engine)."""
    if pid <= 0:
        return False
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
        return True
    return False
