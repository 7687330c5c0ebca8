"""Webhook intake under load: the service against a bare FastAPI endpoint on the same SQLite file.

    .venv/bin/python bench/webhook_load.py [--requests 2000] [--clients 32] [--rate 200]
        [--seconds 10] [--backend docker|fake]

Starts `devops-agent serve` (a temp DATA_DIR) and a bare FastAPI app that writes one row per
request into the same SQLite database (same engine settings). For each it prints:

- closed loop: `--requests` distinct alert groups from `--clients` concurrent clients, as fast as
  they are answered: accepted per second, p50/p99 latency of the 202;
- open loop: `--rate` requests per second for `--seconds`: p50/p99 latency at that rate;

then the throughput ratio (target >= 0.5), whether p99 at the rate is under 50 ms, and the count
of stored alerts against the 202s (target: none lost). Each alert names an unknown service, so
every one starts a real graph run that escalates; the service drains them between phases.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI, Request, Response
from sqlalchemy import Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from devops_agent.memory.db import Database, make_engine

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "bench-" + secrets.token_hex(8)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def payload(tag: str, i: int) -> dict[str, Any]:
    service = f"bench-{tag}-{i}"
    labels = {"alertname": "ServiceDown", "service": service, "severity": "critical"}
    return {
        "version": "4",
        "groupKey": f'{{}}:{{service="{service}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "agent",
        "groupLabels": {"service": service},
        "commonLabels": labels,
        "commonAnnotations": {"summary": f"{service} is down"},
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"{service} is down"},
                "startsAt": "2026-11-24T22:01:02Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": f"{tag}{i:012x}",
            }
        ],
    }


# -- the bare endpoint (run in its own process with --bare PORT DB) ---------------------------


class BareBase(DeclarativeBase):
    pass


class BareRow(BareBase):
    __tablename__ = "bench_bare"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    body: Mapped[str] = mapped_column(Text)
    received_at: Mapped[str] = mapped_column(String(40))


def bare_main(port: int, db_path: str) -> None:
    db = Database(make_engine(f"sqlite:///{db_path}"), name="bare-db")

    def store(body: str) -> None:
        with db.sessions() as session, session.begin():
            session.add(BareRow(body=body, received_at=str(time.time())))

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await db.call(BareBase.metadata.create_all, db.engine)
        yield
        await db.close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/bare")
    async def bare(request: Request) -> Response:
        body = await request.body()
        await db.call(store, body.decode())
        return Response('{"ok":true}', status_code=202, media_type="application/json")

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


# -- the load ----------------------------------------------------------------------------------


@dataclass
class Figures:
    sent: int
    accepted: int
    seconds: float
    latencies_ms: list[float]

    @property
    def per_second(self) -> float:
        return self.accepted / self.seconds if self.seconds else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def line(self) -> str:
        return (
            f"{self.accepted}/{self.sent} accepted in {self.seconds:.2f}s = {self.per_second:7.1f}/s"
            f"  p50 {self.pct(0.50):6.1f} ms  p99 {self.pct(0.99):6.1f} ms"
            f"  mean {statistics.fmean(self.latencies_ms or [0]):6.1f} ms"
        )


async def post(client: httpx.AsyncClient, url: str, body: bytes, out: list[float]) -> bool:
    started = time.perf_counter()
    response = await client.post(url, content=body, headers={"Content-Type": "application/json"})
    out.append((time.perf_counter() - started) * 1000)
    return response.status_code == 202


async def closed_loop(url: str, tag: str, requests: int, clients: int) -> Figures:
    bodies = [json.dumps(payload(tag, i)).encode() for i in range(requests)]
    latencies: list[float] = []
    accepted = 0
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=60, trust_env=False) as client:

        async def worker() -> None:
            nonlocal accepted
            while not queue.empty():
                body = queue.get_nowait()
                ok = await post(client, url, body, latencies)
                accepted += ok

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    return Figures(requests, accepted, elapsed, latencies)


async def open_loop(url: str, tag: str, rate: float, seconds: float) -> Figures:
    count = int(rate * seconds)
    bodies = [json.dumps(payload(tag, i)).encode() for i in range(count)]
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(limits=limits, timeout=60, trust_env=False) as client:
        started = time.perf_counter()
        tasks = []
        for i, body in enumerate(bodies):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(post(client, url, body, latencies)))
        results = await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
    return Figures(count, sum(results), elapsed, latencies)


def start(cmd: list[str], env: dict[str, str], cwd: Path, port: int) -> subprocess.Popen[bytes]:
    log = (cwd / f"server-{port}.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{cmd} exited: see {log.name}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", trust_env=False).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{cmd} did not start: see {log.name}")


def drain(port: int) -> float:
    """Wait until the service has no queued or running run; how long that took."""
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    while True:
        runs = httpx.get(f"http://127.0.0.1:{port}/status", headers=headers, trust_env=False).json()
        if runs["runs"]["queued"] == 0 and runs["runs"]["running"] == 0:
            return time.monotonic() - started
        time.sleep(0.2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--backend", choices=["docker", "fake"], default="docker")
    parser.add_argument("--bare", nargs=2, metavar=("PORT", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        bare_main(int(args.bare[0]), args.bare[1])
        return

    workdir = Path(tempfile.mkdtemp(prefix="webhook-load-"))
    data_dir = workdir / "data"
    db_path = data_dir / "agent.db"
    agent_port, bare_port = free_port(), free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_URL", "WEBHOOK_TOKEN", "OPENAI_", "TARGET_SERVICES"))
    }
    env.update(
        DATA_DIR=str(data_dir),
        API_PORT=str(agent_port),
        AGENT_API_TOKEN=TOKEN,
        REASONER="rules",
        LOG_LEVEL="WARNING",
        INFRA_BACKEND=args.backend,
        RATE_LIMIT_PER_SECOND="0",  # the load is the point here: no per-client limit
    )
    python = sys.executable
    agent_url = f"http://127.0.0.1:{agent_port}/webhook/alerts"
    bare_url = f"http://127.0.0.1:{bare_port}/bare"
    started: list[subprocess.Popen[bytes]] = []
    try:
        started.append(start([python, "-m", "devops_agent", "serve"], env, workdir, agent_port))
        started.append(
            start(
                [python, __file__, "--bare", str(bare_port), str(db_path)], env, workdir, bare_port
            )
        )
        print(
            f"webhook load: {args.requests} requests, {args.clients} clients; "
            f"{args.rate:g}/s for {args.seconds:g}s; backend {args.backend}; SQLite {db_path}"
        )
        a_closed = asyncio.run(closed_loop(agent_url, "c", args.requests, args.clients))
        print(f"  service  closed loop: {a_closed.line()}")
        print(f"           runs drained in {drain(agent_port):.1f}s")
        b_closed = asyncio.run(closed_loop(bare_url, "c", args.requests, args.clients))
        print(f"  bare     closed loop: {b_closed.line()}")
        a_open = asyncio.run(open_loop(agent_url, "o", args.rate, args.seconds))
        print(f"  service  {args.rate:g}/s open loop: {a_open.line()}")
        print(f"           runs drained in {drain(agent_port):.1f}s")
        b_open = asyncio.run(open_loop(bare_url, "o", args.rate, args.seconds))
        print(f"  bare     {args.rate:g}/s open loop: {b_open.line()}")
        with sqlite3.connect(db_path) as db:
            stored = db.execute(
                "SELECT count(*) FROM alerts WHERE service LIKE 'bench-%'"
            ).fetchone()[0]
            runs = db.execute("SELECT count(*) FROM runs WHERE service LIKE 'bench-%'").fetchone()[
                0
            ]
        accepted = a_closed.accepted + a_open.accepted
        ratio = a_closed.per_second / b_closed.per_second if b_closed.per_second else 0.0
        print(f"  throughput ratio service/bare: {ratio:.2f} (target >= 0.5)")
        print(f"  p99 at {args.rate:g}/s: {a_open.pct(0.99):.1f} ms (target < 50 ms)")
        print(
            f"  stored alerts {stored} / 202s {accepted}, runs {runs}: "
            f"{'none lost' if stored == accepted else 'LOST ' + str(accepted - stored)}"
        )
    finally:
        for proc in started:
            proc.terminate()
            proc.wait(timeout=30)
        if sys.exc_info()[0] is None:
            shutil.rmtree(workdir, ignore_errors=True)  # kept, with its logs, when it failed


if __name__ == "__main__":
    main()
