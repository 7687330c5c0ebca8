"""Webhook intake under load: the service against the durable peer, in one run, on one machine.

    .venv/bin/python bench/webhook_load.py [--seconds 10] [--threads 2] [--connections 16]
        [--rate 200] [--open-seconds 10] [--log-level INFO] [--profile flame.svg|stacks.txt]

Needs `wrk` (`apt-get install wrk`; only this bench uses it). Starts the peer (bench/bare_webhook.py:
FastAPI + aiosqlite, one row per alert, commit, then 202) and `devops-agent serve` (INFRA_BACKEND=
fake, SQLite under a temporary DATA_DIR), then:

- closed loop, with wrk and bench/alerts.lua (each request a distinct notification for an unknown
  service, so each one starts a run that escalates): requests per second and p99 of each side, the
  ratio (target: the service at least 0.5x the peer), and that none was lost: rows stored (and
  runs created) against the 2xx answers wrk counted; and each server's CPU time (user + system,
  all threads) per 2xx answer, a figure that depends much less on the neighbours of a shared
  machine than the rates do;
- the drain: how long the runs queued during the burst took to complete (every one must);
- open loop, with this script's own client (wrk is closed-loop only; a bare asyncio client on
  kept-alive connections, latency from each request's scheduled time): --rate requests per second
  for --open-seconds against the service: p50/p99 of the 202 (target: p99 under 10 ms).

`--profile FILE` records the service with py-spy (`pip install py-spy`) during its wrk run: a
flame graph when FILE ends in .svg, else py-spy's collapsed stacks (one line per stack).
A benchmark, not a test: it prints figures, and exits 1 only when alerts were lost or runs did not
complete.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
HOOK = "hook"  # the webhook token alerts.lua sends (WRK_TOKEN)
TOKEN = "bench-" + secrets.token_hex(8)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    wrk = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split(" [")[0]
    return (
        f"{model}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version} (WAL), {wrk}, "
        f"load average {load} at start, {time.strftime('%Y-%m-%d')}"
    )


def py_spy() -> str:
    """py-spy beside this Python (a venv's bin), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("--profile needs py-spy: pip install py-spy")
    return found


def start(cmd: list[str], env: dict[str, str], log: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{cmd[1:3]} exited: see {log}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", trust_env=False).status_code == 200:
                return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{cmd[1:3]} did not start: see {log}")


# -- closed loop: wrk ----------------------------------------------------------------------------


@dataclass
class Wrk:
    requests: int
    non_2xx: int
    socket_errors: int
    per_second: float
    p99_ms: float
    cpu_ms: float = 0.0  # the server process's CPU time (user + system) per 2xx answer

    @property
    def ok(self) -> int:
        return self.requests - self.non_2xx

    def line(self) -> str:
        extra = f", {self.non_2xx} non-2xx" if self.non_2xx else ""
        extra += f", socket errors {self.socket_errors}" if self.socket_errors else ""
        return (
            f"{self.per_second:8.0f} requests/s  p99 {self.p99_ms:6.1f} ms  "
            f"CPU {self.cpu_ms:.2f} ms/request  ({self.requests} requests{extra})"
        )


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all its threads (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk(url: str, args: argparse.Namespace, pid: int) -> Wrk:
    """wrk against `url`; the CPU time the server process `pid` spent meanwhile, per answer: on
    a shared machine the rates depend on the neighbours, the CPU per request much less."""
    cpu_before = cpu_seconds(pid)
    cmd = ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{args.seconds}s"]
    cmd += ["-s", str(HERE / "alerts.lua"), "--latency", url]
    out = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "WRK_TOKEN": HOOK})
    cpu = cpu_seconds(pid) - cpu_before
    text = out.stdout
    total = re.search(r"(\d+) requests in", text)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    if not (total and rate and p99):
        raise SystemExit(f"could not read wrk's output:\n{text}\n{out.stderr}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    return Wrk(
        requests=int(total.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        per_second=float(rate.group(1)),
        p99_ms=_ms(p99.group(1)),
        cpu_ms=cpu * 1000 / max(1, int(total.group(1)) - (int(non_2xx.group(1)) if non_2xx else 0)),
    )


# -- open loop: this script's client -------------------------------------------------------------


def payload(tag: str, i: int) -> dict[str, Any]:
    service = f"open-{tag}-{i}"
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


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """One HTTP/1.1 request on a kept-alive connection; the status code."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return status


async def open_loop(port: int, rate: float, seconds: float) -> tuple[int, int, list[float]]:
    """`rate` requests per second for `seconds`, each sent on time whatever the answers do (a
    new connection when every open one is busy). Each latency runs from the request's scheduled
    time to its answer's last byte, so a stall counts for every request it delays.

    A bare asyncio client over kept-alive connections, the requests prepared beforehand: an
    httpx client costs a millisecond or more of CPU per request, as much as the service."""
    tag = secrets.token_hex(3)
    requests = []
    for i in range(int(rate * seconds)):
        body = json.dumps(payload(tag, i)).encode()
        requests.append(
            b"POST /webhook/alerts HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\n"
            + f"Authorization: Bearer {HOOK}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    opened: list[asyncio.StreamWriter] = []
    latencies: list[float] = []
    failed = 0

    async def post(request: bytes, due: float) -> bool:
        nonlocal failed
        conn = idle.pop() if idle else None
        try:
            if conn is None:
                conn = await asyncio.open_connection("127.0.0.1", port)
                opened.append(conn[1])
            status = await _exchange(*conn, request)
        except (OSError, asyncio.IncompleteReadError, ValueError):
            failed += 1
            return False
        latencies.append((time.perf_counter() - due) * 1000)
        idle.append(conn)
        return status == 202

    started = time.perf_counter()
    tasks = []
    for i, request in enumerate(requests):
        due = started + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(post(request, due)))
    accepted = sum(await asyncio.gather(*tasks))
    for writer in opened:
        writer.close()
    return accepted, failed, sorted(latencies)


def run_loop(coro: Any) -> Any:
    """On uvloop when it is installed (uvicorn[standard] brings it): a lighter client."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# -- the service's side --------------------------------------------------------------------------


def runs(port: int) -> dict[str, int]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    status = httpx.get(f"http://127.0.0.1:{port}/status", headers=headers, trust_env=False)
    counts: dict[str, int] = status.json()["runs"]
    return counts


def drain(port: int, deadline: float = 1800) -> float:
    """Wait until no run is queued or running; the seconds that took."""
    started = time.monotonic()
    while time.monotonic() - started < deadline:
        counts = runs(port)
        if counts["queued"] == 0 and counts["running"] == 0:
            return time.monotonic() - started
        time.sleep(0.2)
    raise SystemExit(f"runs did not drain in {deadline:.0f}s: {runs(port)}")


def count(db: Path, query: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute(query).fetchone()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="wrk's duration (-d)")
    parser.add_argument("--threads", type=int, default=2, help="wrk's threads (-t)")
    parser.add_argument("--connections", type=int, default=16, help="wrk's connections (-c)")
    parser.add_argument("--rate", type=float, default=200, help="open-loop requests per second")
    parser.add_argument("--open-seconds", type=float, default=10)
    parser.add_argument("--log-level", default="INFO", help="the service's LOG_LEVEL")
    parser.add_argument(
        "--profile",
        metavar="SVG",
        help="py-spy profile of the service (SVG: a flame graph, else collapsed stacks)",
    )
    parser.add_argument(
        "--burst-only",
        action="store_true",
        help="only the two wrk bursts (no drain, no open loop): for profiling; not the headline",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")

    workdir = Path(tempfile.mkdtemp(prefix="webhook-load-"))
    data_dir, peer_db = workdir / "data", workdir / "peer.db"
    agent_port, peer_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "OPENAI_"))}
    env.update(
        DATA_DIR=str(data_dir),
        API_HOST="127.0.0.1",
        API_PORT=str(agent_port),
        AGENT_API_TOKEN=TOKEN,
        WEBHOOK_TOKEN=HOOK,
        REASONER="rules",
        LOG_LEVEL=args.log_level,
        INFRA_BACKEND="fake",
        TARGET_SERVICES="",
        # Every request passes the rate limiter, which never refuses here: one client, a flood.
        RATE_LIMIT_PER_SECOND="1000000",
        RATE_LIMIT_BURST="1000000",
    )
    python = sys.executable
    started: list[subprocess.Popen[bytes]] = []
    failed = False
    try:
        peer = start(
            [python, str(HERE / "bare_webhook.py"), str(peer_port), str(peer_db)],
            env,
            workdir / "peer.log",
            peer_port,
        )
        started.append(peer)
        agent = start(
            [python, "-m", "devops_agent", "serve"], env, workdir / "service.log", agent_port
        )
        started.append(agent)
        print(f"webhook load on {machine()}")
        print(
            f"closed loop: wrk -t{args.threads} -c{args.connections} -d{args.seconds}s "
            f"-s bench/alerts.lua; the service's LOG_LEVEL={args.log_level}"
        )
        peer_figures = wrk(f"http://127.0.0.1:{peer_port}", args, peer.pid)
        print(f"  peer     {peer_figures.line()}")
        profiler = None
        if args.profile:
            profiler = subprocess.Popen(
                [py_spy(), "record", "-p", str(agent.pid), "-d", str(args.seconds + 1)]
                + ["-o", args.profile, "--nonblocking", "--threads"]
                + (["--format", "raw"] if not args.profile.endswith(".svg") else []),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        service = wrk(f"http://127.0.0.1:{agent_port}", args, agent.pid)
        burst_done = time.monotonic()
        if profiler is not None:
            profiler.wait(timeout=120)
        print(f"  service  {service.line()}")
        ratio = service.per_second / peer_figures.per_second if peer_figures.per_second else 0
        cpu_ratio = peer_figures.cpu_ms / service.cpu_ms if service.cpu_ms else 0
        print(
            f"  ratio service/peer: {ratio:.2f} (target >= 0.5); by CPU per request {cpu_ratio:.2f}"
        )
        at_end = runs(agent_port)
        if args.burst_only:
            print(
                "  BURST ONLY (--burst-only): no drain, no open loop, runs left queued; "
                f"{at_end['completed']} completed during the burst"
            )
            if args.profile:
                print(f"  py-spy profile of the service's burst: {args.profile}")
            return 0
        drain(agent_port)
        drained = time.monotonic() - burst_done
        after = runs(agent_port)
        db = data_dir / "agent.db"
        stored = count(db, "SELECT count(*) FROM alerts WHERE service LIKE 'wrk-%'")
        made = count(db, "SELECT count(*) FROM runs WHERE service LIKE 'wrk-%'")
        completed = count(
            db, "SELECT count(*) FROM runs WHERE service LIKE 'wrk-%' AND status = 'completed'"
        )
        peer_rows = count(peer_db, "SELECT count(*) FROM alerts")
        print(
            f"  runs when the burst ended: {at_end['queued']} queued, {at_end['running']} running, "
            f"{at_end['completed']} completed; all done {drained:.1f}s after the burst "
            f"({completed} of {made} completed, {after['failed']} failed)"
        )
        # A request in flight when wrk stops is stored but not counted: stored >= 2xx.
        lost = max(0, service.ok - stored) + max(0, service.ok - made)
        lost += max(0, peer_figures.ok - peer_rows)
        print(
            f"  {'none lost' if lost == 0 else f'LOST {lost}'}: service {stored} alerts stored "
            f"and {made} runs created for {service.ok} 2xx counted by wrk; peer {peer_rows} rows "
            f"for {peer_figures.ok} 2xx (the few more: answered after wrk stopped counting)"
        )
        failed = lost != 0 or completed != made

        accepted, refused, latencies = run_loop(open_loop(agent_port, args.rate, args.open_seconds))
        print(
            f"open loop ({args.rate:g}/s for {args.open_seconds:g}s, this script's client): "
            f"service {accepted}/{len(latencies) + refused} accepted"
            + (f" ({refused} failed)" if refused else "")
            + f", p50 {pct(latencies, 0.5):.1f} ms, p99 {pct(latencies, 0.99):.1f} ms "
            "(target < 10 ms)"
        )
        print(f"  runs drained {drain(agent_port):.1f}s after the open loop")
        if args.profile:
            print(f"  py-spy flame graph of the service's burst: {args.profile}")
    finally:
        for proc in started:
            proc.terminate()
            proc.wait(timeout=30)
        if not failed and sys.exc_info()[0] is None:
            shutil.rmtree(workdir, ignore_errors=True)  # kept, with its logs, when it failed
        else:
            print(f"  logs and databases kept in {workdir}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
