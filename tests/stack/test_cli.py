"""`devops-agent stack up|status|down` as users run it: real binaries, PIDs recorded, stopped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import yaml

from tests.support.containers import free_port


def _cli(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATA_DIR", "WEBHOOK_TOKEN", "AGENT_API_TOKEN")
    }
    env.update({"DATA_DIR": str(workdir / "data"), "WEBHOOK_TOKEN": "hook-secret"})
    return subprocess.run(
        [sys.executable, "-m", "devops_agent", "stack", *args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_stack_up_status_down(tmp_path: Path) -> None:
    prometheus, alertmanager = free_port(), free_port()
    ports = ["--prometheus-port", str(prometheus), "--alertmanager-port", str(alertmanager)]
    started = _cli(tmp_path, "up", *ports, "--target", "shop=127.0.0.1:9/cgi-bin/metrics")
    try:
        assert started.returncode == 0, started.stderr
        directory = tmp_path / "data" / "stack"
        status = _cli(tmp_path, "status")
        assert status.returncode == 0
        processes = json.loads(status.stdout)["processes"]
        assert {n: p["running"] for n, p in processes.items()} == {
            "prometheus": True,
            "alertmanager": True,
        }
        for port in (prometheus, alertmanager):
            assert httpx.get(f"http://127.0.0.1:{port}/-/ready", trust_env=False).status_code == 200
        # The rendered configs: demo intervals, the webhook with its token file, the target.
        am = yaml.safe_load((directory / "alertmanager.yml").read_text())
        assert am["route"]["group_wait"] == "1s" and am["route"]["group_interval"] == "2s"
        [hook] = am["receivers"][0]["webhook_configs"]
        assert hook["send_resolved"] is True and hook["url"].endswith("/webhook/alerts")
        token_file = Path(hook["http_config"]["authorization"]["credentials_file"])
        assert token_file.read_text() == "hook-secret" and token_file.stat().st_mode & 0o077 == 0
        [target] = json.loads((directory / "targets" / "shop.json").read_text())
        assert target["labels"] == {"service": "shop", "__metrics_path__": "/cgi-bin/metrics"}
        rules = yaml.safe_load((directory / "alerts.yml").read_text())
        assert {r["for"] for g in rules["groups"] for r in g["rules"]} == {"0s"}
        again = _cli(tmp_path, "up", *ports)
        assert again.returncode == 1 and "already runs" in again.stderr
    finally:
        stopped = _cli(tmp_path, "down")
    assert stopped.returncode == 0 and "alertmanager, prometheus" in stopped.stdout
    assert _cli(tmp_path, "status").returncode == 1
    for pid in processes_pids(processes):
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


def processes_pids(processes: dict[str, dict[str, int]]) -> list[int]:
    return [int(p["pid"]) for p in processes.values()]


def test_deploy_files_are_valid_for_the_real_tools() -> None:
    deploy = Path(__file__).resolve().parents[2] / "deploy"
    for argv in (
        ["promtool", "check", "rules", str(deploy / "prometheus" / "alerts.yml")],
        ["amtool", "check-config", str(deploy / "alertmanager" / "alertmanager.yml")],
    ):
        checked = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert checked.returncode == 0, checked.stdout + checked.stderr
