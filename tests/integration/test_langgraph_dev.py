"""`langgraph dev` serves the graph of langgraph.json: one run to its approval interrupt and
through resume, driven with langgraph-sdk against a real crashed container."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from langgraph_sdk import get_client

from tests.support.containers import Lab, probe

pytestmark = pytest.mark.docker
ROOT = Path(__file__).resolve().parents[2]
PORT = 2124


@pytest.fixture
def langgraph_dev(tmp_path) -> Iterator[str]:
    binary = Path(sys.executable).with_name("langgraph")
    env = {
        **os.environ,
        "DATA_DIR": str(tmp_path),
        "SAFETY_MODE": "true",
        "VALIDATE_TIMEOUT": "15",
        "VALIDATE_SETTLE": "0",  # in Studio a window waits for its resume: off here
    }
    env.pop("DATABASE_URL", None)
    log = (tmp_path / "langgraph-dev.log").open("w")
    proc = subprocess.Popen(
        [str(binary), "dev", "--port", str(PORT), "--no-browser", "--no-reload"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{PORT}"
    deadline = time.monotonic() + 120
    try:
        while True:
            assert proc.poll() is None, (tmp_path / "langgraph-dev.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "langgraph dev did not start"
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(ROOT / ".langgraph_api", ignore_errors=True)


async def test_studio_graph_waits_for_approval_and_resumes(langgraph_dev: str, lab: Lab) -> None:
    app = lab.crashed()
    client = get_client(url=langgraph_dev)
    assistants = await client.assistants.search(graph_id="incident")
    assert assistants, "langgraph.json must declare the `incident` graph"
    thread = await client.threads.create()
    alert = {
        "alertname": "ServiceDown",
        "fingerprint": "fp",
        "status": "firing",
        "labels": {"service": app.name},
    }
    await client.runs.wait(thread["thread_id"], "incident", input={"alerts": [alert]})

    state = await client.threads.get_state(thread["thread_id"])
    assert state["next"] == ["await_approval"]
    request = state["tasks"][0]["interrupts"][0]["value"]
    assert request["plan"]["steps"][0] == {
        **request["plan"]["steps"][0],
        "operation": "restart_service",
    }
    assert state["values"]["diagnosis"]["category"] == "crash"
    assert probe(app.health_url) is None

    await client.runs.wait(
        thread["thread_id"],
        "incident",
        command={"resume": {"decision": "approve", "approver": "studio"}},
    )
    final = await client.threads.get_state(thread["thread_id"])
    assert final["next"] == [] and final["values"]["outcome"] == "resolved"
    assert final["values"]["approval"]["approver"] == "studio:studio"  # recorded as from Studio
    assert probe(app.health_url) == 200
