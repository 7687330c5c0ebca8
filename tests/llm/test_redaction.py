"""Nothing secret leaves the agent (issue 21), end to end on a real service and container.

A real container prints the corpus of tests/support/secrets.py in its logs and crashes; a real
`devops-agent serve` handles the alert through the LLM path against the recording model of
tests/llm/server.py, which investigates with the get_logs tool, cites what it read and plans a
restart; a person rejects it. Then no secret of the corpus may be in any request the model got,
any notification, any API answer, any row of the SQLite file or any line of the service's log,
while the lines around them (and the masked lines themselves) did reach the model.
"""

from __future__ import annotations

import html
import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest

from devops_agent.redact import redact
from devops_agent.tools.logs import ERROR_PATTERN, error_lines
from tests.llm.server import Inbox, Reply, ScriptedLLM, ServerThread, answer, call, tools
from tests.server.conftest import Server, alert_payload
from tests.support.containers import Lab, logs, wait_for, wait_status
from tests.support.secrets import EC_KEY, NEAR_MISSES, OPENSSH_KEY, PKCS8_KEY, SECRETS, body_lines

pytestmark = pytest.mark.docker

PANIC = "panic: runtime error: invalid memory address or nil pointer dereference"
LINE = 290  # the model reads the first 300 characters of a log line
PRINTED_KEYS = [EC_KEY, OPENSSH_KEY, PKCS8_KEY]  # 15 lines: they fit in the tail of 20 lines


def _pack(items: list[str], prefix: str) -> list[str]:
    """Items joined into lines of at most LINE characters (each starting with `prefix`). A
    Cookie header ends its line: it is masked to the end of the line."""
    lines: list[str] = []
    closed = True
    for item in items:
        if not closed and len(lines[-1]) + 3 + len(item) <= LINE:
            lines[-1] += " | " + item
        else:
            lines.append(prefix + item)
        closed = "Cookie:" in item
    return lines


SECRET_LINES = _pack([line for line, _ in SECRETS], "error: leaked config: ")
# Near misses, as many as fit in the tail beside the keys and the panic (not those that look
# like errors: the error lines the model reads are the secrets').
NEAR_MISS_LINES = _pack([m for m in NEAR_MISSES if not ERROR_PATTERN.search(m)], "info: ")[:4]
KEPT_NEAR_MISSES = [m for m in NEAR_MISSES if any(m in line for line in NEAR_MISS_LINES)]
LOG = [
    "info: starting orders service",
    *SECRET_LINES,  # error lines: within the last 20 the model reads
    *NEAR_MISS_LINES,
    *"\n".join(PRINTED_KEYS).splitlines(),
    PANIC,
]
GHP = "kASAOsE1nYEZ9GlGHpYaax7LBejYWo6oScBV"
LABEL_SECRET = "L4belS3cretQz81x"
SECRET_VALUES = [
    LABEL_SECRET,
    *(s for _, secrets in SECRETS for s in secrets),
    *(line for key in PRINTED_KEYS for line in body_lines(key)),
]


def test_the_log_is_built_so_that_every_line_reaches_the_model() -> None:
    """Preconditions of the end-to-end test, so that it cannot pass by sending nothing."""
    assert all(len(line) <= LINE for line in LOG)
    shown = error_lines(LOG)[-20:] + LOG[-20:]  # what a prompt shows of get_logs
    assert all(line in shown for line in SECRET_LINES + NEAR_MISS_LINES + [PANIC])
    assert all(line in shown for key in PRINTED_KEYS for line in key.splitlines())
    assert len(KEPT_NEAR_MISSES) >= 15 and all(redact(line) == line for line in NEAR_MISS_LINES)


def _target(body: dict[str, Any]) -> str:
    found = re.search(r"the service (\S+?),", body["messages"][0]["content"])
    assert found, body["messages"][0]["content"][:500]
    return found[1]


def _logged_errors(body: dict[str, Any]) -> list[str]:
    """The error lines of the last tool result the model got (JSON between data markers)."""
    content = [m["content"] for m in body["messages"] if m["role"] == "tool"][-1]
    data = json.loads(content.split("\n", 1)[1].rsplit("\n", 1)[0])
    return [str(line) for line in data["error_lines"]]


def responder(body: dict[str, Any]) -> Reply:
    """The model: look at the logs with the tool, cite what it read, plan a restart."""
    offered = [t["function"]["name"] for t in body.get("tools", [])]
    target = _target(body)
    if "submit_plan" in offered:
        step = {"operation": "restart_service", "target": target, "params": {}, "rationale": "r"}
        return answer(
            "submit_plan", action="remediate", steps=[step], why="restart it", confidence=0.9
        )
    if not any(m["role"] == "tool" for m in body["messages"]):
        return tools(call("get_logs", target=target, lines=200))
    cited = [*_logged_errors(body)[:3], PANIC]
    return answer(
        "submit_diagnosis",
        category="crash",
        root_cause="The service panicked on a nil pointer and exited.",
        confidence=0.9,
        evidence=cited,
    )


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, str]]:
    receiver = Inbox()
    with ServerThread(receiver.app) as thread:
        yield receiver, f"http://127.0.0.1:{thread.port}/hook"


def _leaks(haystack: str) -> list[str]:
    return [secret for secret in SECRET_VALUES if secret in haystack]


def _rows(db: Path) -> Iterator[tuple[str, str]]:
    """(table, every text and blob of one row) for each row of each table of the SQLite file."""
    with sqlite3.connect(db) as conn:
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 (names from the file)
                parts = [
                    v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in row
                ]
                yield table, "\n".join(parts)


def test_no_secret_of_the_corpus_leaves_the_agent(
    tmp_path: Path,
    lab: Lab,
    llm: ScriptedLLM,
    inbox: tuple[Inbox, str],
    docker_client: docker.DockerClient,
) -> None:
    receiver, hook = inbox
    app = lab.start(
        f"orders-{lab.lab_id}",
        command=["/bin/sh", "-c", 'printf "%s\\n" "$1"; exit 2', "sh", "\n".join(LOG)],
        labels={"com.example.db_password": LABEL_SECRET},  # read with the target: masked too
        wait_healthy=False,
    )
    wait_status(docker_client, app.name, "exited")
    printed = logs(docker_client, app.name)
    assert all(secret in printed for secret in SECRET_VALUES[1:])  # the leak is real
    llm.responder = responder
    server = Server(
        tmp_path / "agent",
        env={
            "REASONER": "llm",
            "OPENAI_BASE_URL": llm.base_url,  # type: ignore[attr-defined]
            "OPENAI_API_KEY": "test-llm-key",
            "LLM_MODEL": "recording-model",
            "LLM_TIMEOUT": "20",
            "NOTIFY_WEBHOOK_URL": hook,
        },
    ).start()
    try:
        response = server.webhook(alert_payload(app.name))
        assert response.status_code == 202, response.text
        run_id = response.json()["runs"][0]["run_id"]
        waiting = server.wait_status(run_id, "awaiting_approval")
        approvals = server.get("/approvals").json()
        assert [a["run_id"] for a in approvals["approvals"]] == [run_id]
        pages = [server.get("/ui/approvals").text]  # the console shows what the API shows
        # The request reaches the hook before the answer: an approval request still in the
        # outbox when its run is decided is dropped as stale, by design.
        wait_for(lambda: receiver.bodies, 30, what="the approval request")
        assert server.resume(run_id, "reject", comment="not now").status_code == 202
        final = server.wait_status(run_id, "completed")
        wait_for(lambda: len(receiver.bodies) >= 2, 30, what="the escalation")
        pages += [server.get(path).text for path in (f"/ui/runs/{run_id}", "/ui/runs", "/ui/audit")]
        assert run_id in pages[0] and "***" in pages[0]
        answers = [
            [html.unescape(page) for page in pages],
            waiting,
            approvals,
            final,
            server.get(f"/runs/{run_id}/history").json(),
            server.get("/runs").json(),
            server.get("/orchestrator/status").json(),
            server.get("/audit", params={"run_id": run_id}).json(),
        ]
        # A client that puts a token in a query string: the access log must not keep it.
        query = {"access_token": "wOkeg9xvYWM7fv", "api_key": "ghp_" + GHP}  # from the corpus
        assert server.get("/health", params=query).status_code == 200
    finally:
        server.stop()

    # The run went through the LLM path and the model read the logs, masked.
    assert final["outcome"] == "rejected" and final["diagnosis"]["reasoner"] == "llm"
    assert [s["operation"] for s in final["plan"]["steps"]] == ["restart_service"]
    requests = [json.dumps(body, ensure_ascii=False) for body in llm.requests]
    assert len(requests) >= 3 and any('"role": "tool"' in r for r in requests)
    sent = "\n".join(requests)
    assert not _leaks(sent)
    for masked in ("DB_PASSWORD=***", "postgres://app:***@db", "ghp_***", "Bearer ***"):
        assert masked in sent, masked
    assert "-----BEGIN EC PRIVATE KEY-----" in sent and PANIC in sent
    missing = [m for m in KEPT_NEAR_MISSES if json.dumps(m)[1:-1] not in sent]
    assert not missing, missing  # the other lines reached the model as they were
    # What it cited (masked lines) is on the run, and nothing else leaked anywhere.
    assert any("***" in e["summary"] for e in final["diagnosis"]["evidence"])
    assert {b.get("kind") for b in receiver.bodies} >= {"approval_request", "escalation"}
    assert not _leaks(json.dumps(receiver.bodies, ensure_ascii=False))
    assert not _leaks(json.dumps(answers, ensure_ascii=False))
    rows = list(_rows(server.data_dir / "agent.db"))
    assert {"checkpoints", "audit_log", "incidents"} <= {table for table, _ in rows}
    assert not [(table, _leaks(text)) for table, text in rows if _leaks(text)]
    assert "***" in "".join(text for _, text in rows)  # the masked evidence is what was stored
    assert not _leaks(server.logs())
    assert "GET /health?access_token=***&api_key=***" in server.logs()
    assert "Application startup complete" in server.logs()  # the log is the service's own
