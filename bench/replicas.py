"""Several replicas on one PostgreSQL: throughput with 1, 2 and 3 replicas, and resume latency
with 10,000 runs waiting for approval.

    .venv/bin/python bench/replicas.py [--runs 600] [--waiting 10000] [--resumes 200]
        [--admin postgresql://postgres@127.0.0.1:5432/postgres]

Each phase gets a fresh database (created and dropped here) and real `devops-agent serve`
processes: INFRA_BACKEND=fake, REASONER=rules, SAFETY_MODE=false, AUTO_APPROVE_MAX_RISK=medium.

- throughput: `--runs` alert groups (each an unknown service, so each run goes triage ->
  escalate -> learn) POSTed round-robin to the replicas by 32 clients; runs completed per
  second, from the first POST until the database counts every run completed.
- resume latency: one run is driven to its approval interrupt in this process, and its
  checkpoints are cloned in SQL into `--waiting` runs (each with its own thread and run_id) with
  their rows in `runs` (awaiting_approval, with what they ask): exactly what 10,000 real waiting
  runs store. GET /approvals is timed for its first page and for reading every page. Then
  `--resumes` decisions (reject: approve, escalate, learn) go, one at a time, to a random
  replica; for each, the 202's latency and the time until the database shows the run completed. Each replica's RSS is printed before the
  waiting runs exist, after, and after the resumes: waiting runs live in the database, so it
  must not grow with them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

from devops_agent.config import load_settings
from devops_agent.context import AgentContext
from devops_agent.runner import open_agent
from devops_agent.state import Alert
from devops_agent.tools.fake import FakeBackend, FakeService

TOKEN = "bench-" + secrets.token_hex(8)
SETTINGS = {
    "INFRA_BACKEND": "fake",
    "REASONER": "rules",
    "SAFETY_MODE": "false",
    "AUTO_APPROVE_MAX_RISK": "medium",
    "LOG_LEVEL": "WARNING",
    "AGENT_API_TOKEN": TOKEN,
    "MAX_ACTIONS_PER_HOUR": "1000000",
    "MAX_ACTIONS_PER_SERVICE_PER_HOUR": "1000000",
    "APPROVAL_TIMEOUT": "86400",
    "AUDIT_KEY": "bench-audit-" + secrets.token_hex(16),  # required on PostgreSQL
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def payload(service: str) -> dict[str, Any]:
    labels = {"alertname": "ServiceDown", "service": service, "severity": "critical"}
    return {
        "version": "4",
        "groupKey": f'{{}}:{{service="{service}"}}',
        "status": "firing",
        "receiver": "agent",
        "groupLabels": {"service": service},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"{service} is down"},
                "startsAt": "2026-11-24T22:01:02Z",
                "fingerprint": secrets.token_hex(8),
            }
        ],
    }


@contextmanager
def database(admin: str) -> Iterator[str]:
    name = f"bench_replicas_{secrets.token_hex(4)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


class Replica:
    def __init__(self, workdir: Path, url: str, **settings: str):
        self.port = free_port()
        self.workdir = workdir / f"replica-{self.port}"
        self.workdir.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "OPENAI_"))}
        env.update(SETTINGS, DATABASE_URL=url, API_PORT=str(self.port), DATA_DIR=str(self.workdir))
        env.update(settings)
        log = (self.workdir / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "devops_agent", "serve"],
            env=env,
            cwd=self.workdir,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait(self) -> None:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"replica exited: see {self.workdir}/server.log")
            try:
                if httpx.get(f"{self.url}/health", trust_env=False).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise SystemExit(f"replica did not start: see {self.workdir}/server.log")

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@contextmanager
def replicas(n: int, url: str, **settings: str) -> Iterator[list[Replica]]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-replicas-"))
    started = [Replica(workdir, url, **settings) for _ in range(n)]
    try:
        for replica in started:
            replica.wait()
        yield started
    finally:
        for replica in started:
            replica.stop()
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(workdir, ignore_errors=True)


def count(url: str, sql: str, *params: Any) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()
        return int(row[0]) if row else 0


async def post_all(servers: list[Replica], bodies: list[dict[str, Any]]) -> None:
    queue = list(enumerate(bodies))
    async with httpx.AsyncClient(timeout=60, trust_env=False) as client:

        async def worker() -> None:
            while queue:
                i, body = queue.pop()
                answer = await client.post(
                    f"{servers[i % len(servers)].url}/webhook/alerts", json=body
                )
                if answer.status_code != 202:
                    raise SystemExit(f"webhook answered {answer.status_code}: {answer.text}")

        await asyncio.gather(*(worker() for _ in range(32)))


def throughput(admin: str, n: int, runs: int) -> float:
    with database(admin) as url, replicas(n, url) as servers:
        bodies = [payload(f"tp{n}-{i}") for i in range(runs)]
        started = time.monotonic()
        asyncio.run(post_all(servers, bodies))
        while count(url, "SELECT count(*) FROM runs WHERE status = 'completed'") < runs:
            time.sleep(0.05)
        elapsed = time.monotonic() - started
        incidents = count(url, "SELECT count(*) FROM incidents")
        assert incidents == runs, (incidents, runs)
        return runs / elapsed


async def seed(url: str) -> dict[str, Any]:
    """One real run ("seed"), driven to its approval interrupt on `url`; what it asks."""
    settings = load_settings(
        database_url=url, audit_key=SETTINGS["AUDIT_KEY"], safety_mode=True, validate_settle=0
    )
    web = FakeService("web", status="exited", exit_code=2, logs=["panic: nil pointer"])
    ctx = AgentContext.from_settings(settings, backend=FakeBackend([web]))
    alert = Alert(alertname="ServiceDown", fingerprint="seed", labels={"service": "web"})
    async with open_agent(ctx) as agent:
        async for _ in agent.stream("seed", [alert]):
            pass
        request = await agent.pending_approval("seed")
        assert request is not None
    return request


CLONE = """
WITH ids AS (SELECT unnest(%(ids)s::text[]) AS id)
{insert}
"""
CLONES = [
    """INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id,
           type, checkpoint, metadata)
       SELECT ids.id, c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id, c.type,
           CASE WHEN c.checkpoint #> '{channel_values,run_id}' IS NULL THEN c.checkpoint
                ELSE jsonb_set(c.checkpoint, '{channel_values,run_id}', to_jsonb(ids.id)) END,
           c.metadata
       FROM checkpoints c CROSS JOIN ids WHERE c.thread_id = 'seed'""",
    """INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)
       SELECT ids.id, b.checkpoint_ns, b.channel, b.version, b.type, b.blob
       FROM checkpoint_blobs b CROSS JOIN ids WHERE b.thread_id = 'seed'""",
    """INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx,
           channel, type, blob, task_path)
       SELECT ids.id, w.checkpoint_ns, w.checkpoint_id, w.task_id, w.idx, w.channel, w.type,
           w.blob, w.task_path
       FROM checkpoint_writes w CROSS JOIN ids WHERE w.thread_id = 'seed'""",
    """INSERT INTO runs (run_id, incident_id, service, status, created_at, updated_at,
           awaiting_since, approval_request)
       SELECT ids.id, 'inc-' || ids.id, 'svc-' || ids.id, 'awaiting_approval',
           to_char(now() AT TIME ZONE 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
           to_char(now() AT TIME ZONE 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
           to_char(now() AT TIME ZONE 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"+00:00"'),
           %(request)s::json
       FROM ids""",
]


def clone_waiting(url: str, n: int, request: dict[str, Any]) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    with psycopg.connect(url) as conn:
        for sql in CLONES:
            conn.execute(CLONE.format(insert=sql), {"ids": ids, "request": json.dumps(request)})
        conn.commit()
    return ids


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def resume_latency(admin: str, n_replicas: int, waiting: int, resumes: int) -> None:
    with database(admin) as url:
        request = asyncio.run(seed(url))
        # Safety on, as for runs that really wait for a person (with it off, the policy would
        # act on its own when the run resumes, whatever the decision).
        with replicas(n_replicas, url, SAFETY_MODE="true") as servers:
            time.sleep(2)
            rss = [[r.rss_mib()] for r in servers]
            started = time.monotonic()
            ids = clone_waiting(url, waiting, request)
            print(f"  {waiting} waiting runs cloned in SQL in {time.monotonic() - started:.1f}s")
            # Let every replica's loops see them: the poller, and the approval sweeper (every
            # 30 s here), which reads the waiting runs.
            time.sleep(35)
            for r, row in zip(servers, rss, strict=True):
                row.append(r.rss_mib())
            accepted: list[float] = []
            done: list[float] = []
            headers = {"Authorization": f"Bearer {TOKEN}"}
            with httpx.Client(timeout=120, trust_env=False, headers=headers) as client:
                t0 = time.perf_counter()
                first = client.get(f"{servers[0].url}/approvals").json()
                first_ms = (time.perf_counter() - t0) * 1000
                t0, listed, cursor = time.perf_counter(), len(first["approvals"]), first["next"]
                while cursor:
                    page = client.get(
                        f"{servers[0].url}/approvals", params={"limit": 1000, "cursor": cursor}
                    ).json()
                    listed, cursor = listed + len(page["approvals"]), page["next"]
                all_s = time.perf_counter() - t0
            print(
                f"  GET /approvals: first page ({len(first['approvals'])}) in {first_ms:.1f} ms; "
                f"the rest ({listed - len(first['approvals'])}) by 1,000 in {all_s:.2f} s"
            )
            # reject: approve -> escalate -> learn. (approve would run restart_service on a
            # service the replicas' empty fake backend does not have, then validate would wait
            # for VALIDATE_TIMEOUT: a figure of the timeout, not of the resume.)
            body = {"decision": "reject", "comment": "bench"}
            with httpx.Client(timeout=60, trust_env=False, headers=headers) as client:
                for run_id in random.sample(ids, resumes):
                    server = random.choice(servers)
                    t0 = time.perf_counter()
                    answer = client.post(f"{server.url}/runs/{run_id}/resume", json=body)
                    accepted.append((time.perf_counter() - t0) * 1000)
                    assert answer.status_code == 202, answer.text
                    deadline = time.monotonic() + 60
                    with psycopg.connect(url, autocommit=True) as conn:
                        while True:
                            row = conn.execute(
                                "SELECT status FROM runs WHERE run_id = %s", (run_id,)
                            ).fetchone()
                            if row and row[0] in ("completed", "failed", "awaiting_approval"):
                                break
                            if time.monotonic() > deadline:
                                raise SystemExit(f"run {run_id} still {row}: see {server.workdir}")
                            time.sleep(0.002)
                    done.append((time.perf_counter() - t0) * 1000)
            for r, row in zip(servers, rss, strict=True):
                row.append(r.rss_mib())
            failed = count(url, "SELECT count(*) FROM runs WHERE status = 'failed'")
            still = count(url, "SELECT count(*) FROM runs WHERE status = 'awaiting_approval'")
        print(
            f"  resume 202: p50 {statistics.median(accepted):.1f} ms, p99 {pct(accepted, 0.99):.1f} ms"
        )
        print(
            f"  resume to completed: p50 {statistics.median(done):.1f} ms, "
            f"p99 {pct(done, 0.99):.1f} ms ({resumes} resumes, {failed} failed, {still} still waiting)"
        )
        for i, row in enumerate(rss):
            print(
                f"  replica {i + 1} RSS: {row[0]:.0f} MiB before, {row[1]:.0f} MiB with "
                f"{waiting} waiting, {row[2]:.0f} MiB after the resumes"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=600)
    parser.add_argument("--waiting", type=int, default=10_000)
    parser.add_argument("--resumes", type=int, default=200)
    parser.add_argument("--replicas", type=int, default=3, help="replicas for the resume phase")
    parser.add_argument("--admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    print(f"replicas on PostgreSQL: {args.runs} runs per throughput phase, cpus {os.cpu_count()}")
    for n in (1, 2, 3):
        print(f"  {n} replica(s): {throughput(args.admin, n, args.runs):.1f} runs/s")
    print(f"resume latency, {args.replicas} replicas, {args.waiting} runs waiting for approval:")
    resume_latency(args.admin, args.replicas, args.waiting, args.resumes)


if __name__ == "__main__":
    main()
