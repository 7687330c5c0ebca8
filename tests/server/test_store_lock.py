"""One process per SQLite store: a second `serve` or `run-alert` on the same DATA_DIR refuses to
start (exit 2, one line naming the holder) before it touches a run; readers work beside it."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.server.conftest import Server, alert_payload
from tests.support.containers import wait_for


def test_a_second_process_on_the_same_store_refuses_to_start(server: Server, tmp_path) -> None:
    assert server.proc is not None
    second = Server(server.workdir)
    result = second.run_to_exit()
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and f"pid {server.proc.pid}" in lines[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    # The first one goes on serving, and took no second writer.
    assert server.get("/health").status_code == 200

    payload = tmp_path / "alert.json"
    payload.write_text(json.dumps(alert_payload("nothing-here")))
    cli = [sys.executable, "-m", "devops_agent"]
    run_alert = subprocess.run(
        [*cli, "run-alert", str(payload), "--reject"],
        cwd=server.workdir,
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run_alert.returncode == 2 and f"pid {server.proc.pid}" in run_alert.stderr

    verify = subprocess.run(
        [*cli, "audit", "verify"],
        cwd=server.workdir,
        env=server.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_the_lock_goes_with_the_process(make_server, tmp_path) -> None:
    first = make_server()
    first.kill()  # SIGKILL: no shutdown code runs, the kernel drops the lock
    again = Server(first.workdir).start()
    try:
        wait_for(lambda: again.get("/health").status_code == 200, timeout=30)
    finally:
        again.stop()
