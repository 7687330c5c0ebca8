"""Any replica may receive a webhook: the same group sent to all at once is one run, and a burst
spread over the replicas is handled exactly once each (counted in the database, not the API)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tests.replicas.conftest import Database
from tests.server.conftest import Server, alert_payload

FAST = {"INFRA_BACKEND": "fake", "RUN_LEASE_SECONDS": "5"}  # unknown services escalate at once


def test_the_same_group_sent_to_every_replica_at_once_is_one_run(
    replicas: Callable[..., list[Server]], db: Database
) -> None:
    servers = replicas(3, **FAST)
    services = [f"same-{i}" for i in range(10)]
    for service in services:
        payload = alert_payload(service)
        gate = threading.Barrier(len(servers))

        def send(server: Server, payload: dict = payload, gate: threading.Barrier = gate) -> dict:
            gate.wait()
            response = server.webhook(payload)
            assert response.status_code == 202, response.text
            return response.json()

        with ThreadPoolExecutor(len(servers)) as pool:
            answers = list(pool.map(send, servers))
        run_ids = {a["runs"][0]["run_id"] for a in answers}
        assert len(run_ids) == 1, answers
        assert sorted(a["runs"][0]["deduplicated"] for a in answers) == [False, True, True]
    db.wait(
        "SELECT count(*) FROM runs WHERE status = 'completed'",
        lambda n: n == len(services),
        "runs completed",
    )
    assert db.value("SELECT count(*) FROM runs") == len(services)
    assert db.value("SELECT count(*) FROM alerts") == len(services)
    assert db.value("SELECT count(DISTINCT run_id) FROM incidents") == len(services)
    assert db.value("SELECT count(*) FROM incidents") == len(services)
    _each_run_started_once(db)


def test_a_burst_of_200_groups_over_three_replicas_is_handled_once_each(
    replicas: Callable[..., list[Server]], db: Database
) -> None:
    servers = replicas(3, **FAST)
    payloads = [alert_payload(f"burst-{i:03d}") for i in range(200)]

    def send(index: int) -> str:
        response = servers[index % len(servers)].webhook(payloads[index])
        assert response.status_code == 202, response.text
        run: dict = response.json()["runs"][0]
        assert run["deduplicated"] is False
        return str(run["run_id"])

    with ThreadPoolExecutor(24) as pool:
        run_ids = list(pool.map(send, range(len(payloads))))
    assert len(set(run_ids)) == 200
    db.wait("SELECT count(*) FROM runs WHERE status = 'completed'", lambda n: n == 200, "completed")
    assert db.value("SELECT count(*) FROM runs") == 200
    assert db.value("SELECT count(*) FROM incidents") == 200
    assert db.value("SELECT count(DISTINCT run_id) FROM incidents") == 200
    assert db.value("SELECT count(*) FROM runs WHERE outcome = 'escalated'") == 200
    assert db.value("SELECT count(*) FROM runs WHERE owner IS NOT NULL") == 0
    _each_run_started_once(db)


def _each_run_started_once(db: Database) -> None:
    """A run that two replicas both started would have two `input` checkpoints on its thread."""
    twice = db.rows(
        "SELECT thread_id, count(*) FROM checkpoints WHERE metadata->>'source' = 'input' "
        "GROUP BY thread_id HAVING count(*) <> 1"
    )
    assert twice == []
    assert db.value(
        "SELECT count(DISTINCT thread_id) FROM checkpoints WHERE metadata->>'source' = 'input'"
    ) == db.value("SELECT count(*) FROM runs")
