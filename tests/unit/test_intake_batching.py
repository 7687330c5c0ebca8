"""Intake under load (issue 13): notifications that arrive together share one transaction, each
caller answered after that commit with its own outcome; FastAPI's HTTP telemetry stays off
unless an OTLP endpoint is configured."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy import event

from devops_agent.memory.intake import AlertIntake
from devops_agent.memory.run_repo import RunRepo
from devops_agent.server.app import http_telemetry
from devops_agent.state import Alert


def _alert(i: int) -> Alert:
    labels = {"alertname": "ServiceDown", "service": f"svc-{i}"}
    return Alert(
        alertname="ServiceDown",
        status="firing",
        labels=labels,
        annotations={},
        startsAt="2026-12-01T08:00:00Z",
        fingerprint=f"fp-{i:04d}",
    )


async def test_concurrent_notifications_share_a_transaction(tmp_path) -> None:
    db = tmp_path / "agent.db"
    repo = RunRepo.from_url(f"sqlite+aiosqlite:///{db}")
    await repo.setup()
    commits: list[int] = []
    event.listen(repo.engine, "commit", lambda _conn: commits.append(1))
    try:
        intake = AlertIntake(repo)
        # One notification first (the writer starts), then 40 more while it works.
        first = asyncio.ensure_future(intake.ingest([("svc-0", [_alert(0)])]))
        rest = [intake.ingest([(f"svc-{i}", [_alert(i)])]) for i in range(1, 41)]
        results = await asyncio.gather(first, *rest)
    finally:
        await repo.close()
    assert len(commits) <= 3  # 41 notifications, at most three transactions
    run_ids = [r.groups[0].run_id for r in results]
    assert all(r.groups[0].created for r in results)
    assert len(set(run_ids)) == 41
    with sqlite3.connect(db) as conn:  # every answer was given after its commit
        assert conn.execute("SELECT count(*) FROM alerts").fetchone()[0] == 41
        stored = {row[0] for row in conn.execute("SELECT run_id FROM runs")}
    assert stored == set(run_ids)


def test_http_telemetry_only_with_an_otlp_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_ENDPOINT", raising=False)
    off = http_telemetry()
    assert off in ({}, {"telemetry": {"tracing": False, "metrics": False, "logs": False}})
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert http_telemetry() == {}  # FastAPI's defaults: its telemetry on
