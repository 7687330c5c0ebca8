"""An example service for the compose stack: /health, /metrics, and two faults to try.

    curl -X POST http://127.0.0.1:8080/crash   # the process exits with code 2 (a "panic")
    curl -X POST http://127.0.0.1:8080/hang    # /health stops answering; the process keeps running

Standard library only, so it runs on the plain python image. Metrics use the names that
deploy/prometheus/alerts.yml reads: health_check_up, http_requests_total,
http_request_duration_seconds, process_resident_memory_bytes, memory_limit_bytes.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HUNG = threading.Event()
COUNTS: dict[tuple[str, str], int] = {}
BUCKETS = (0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.5, 5.0)
DURATIONS: list[float] = []


def memory() -> tuple[int, int]:
    def read(*paths: str) -> int:
        for path in paths:
            try:
                text = Path(path).read_text().strip()
                return 0 if text == "max" else int(text)
            except (OSError, ValueError):
                continue
        return 0

    usage = read("/sys/fs/cgroup/memory.current", "/sys/fs/cgroup/memory/memory.usage_in_bytes")
    limit = read("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    return usage, limit if limit < 1 << 50 else 0


def metrics() -> str:
    usage, limit = memory()
    lines = [f"health_check_up {0 if HUNG.is_set() else 1}"]
    lines += [f'http_requests_total{{path="{p}",code="{c}"}} {n}' for (p, c), n in COUNTS.items()]
    for bound in BUCKETS:
        count = sum(d <= bound for d in DURATIONS)
        lines.append(f'http_request_duration_seconds_bucket{{le="{bound}"}} {count}')
    lines.append(f'http_request_duration_seconds_bucket{{le="+Inf"}} {len(DURATIONS)}')
    lines.append(f"http_request_duration_seconds_sum {sum(DURATIONS)}")
    lines.append(f"http_request_duration_seconds_count {len(DURATIONS)}")
    lines += [f"process_resident_memory_bytes {usage}", f"memory_limit_bytes {limit}"]
    return "\n".join(lines) + "\n"


class Handler(BaseHTTPRequestHandler):
    def _reply(self, code: int, body: str) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 (the http.server name)
        started = time.monotonic()
        if self.path == "/metrics":
            self._reply(200, metrics())
            return
        if self.path == "/health":
            while HUNG.is_set():
                time.sleep(1)  # never answers: what a deadlocked service looks like
            self._reply(200, "ok\n")
        else:
            self._reply(404, "not found\n")
        key = (
            self.path if self.path == "/health" else "other",
            "200" if self.path == "/health" else "404",
        )
        COUNTS[key] = COUNTS.get(key, 0) + 1
        DURATIONS.append(time.monotonic() - started)
        del DURATIONS[:-10000]

    def do_POST(self) -> None:  # noqa: N802
        if self.path == "/crash":
            self._reply(202, "crashing\n")
            print("panic: runtime error: invalid memory address", file=sys.stderr, flush=True)
            os._exit(2)
        if self.path == "/hang":
            HUNG.set()
            self._reply(202, "hanging\n")
            return
        self._reply(404, "not found\n")

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    print("info: listening on :8080", flush=True)
    ThreadingHTTPServer(("0.0.0.0", 8080), Handler).serve_forever()  # noqa: S104
