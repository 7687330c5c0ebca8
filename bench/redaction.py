"""The cost of masking secrets (devops_agent/redact.py), per MiB of logs.

    .venv/bin/python bench/redaction.py [MiB]

Realistic log text (access logs, logfmt, JSON lines, Go panics and Java stack traces, with a
secret of tests/support/secrets.py in about one line in a hundred and a private key now and
then) goes through the log reader's path (`redact_lines`, as `get_logs` runs it), one string
at a time (`redact`, as the log filter does), and through REDACT_IDENTIFIERS' pseudonyms. Then
adversarial 1 MiB inputs, whose figures show that no pattern backtracks. CPU time, median of 5;
prints the machine.
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from devops_agent.reasoning.identifiers import Pseudonyms  # noqa: E402
from devops_agent.redact import redact, redact_data, redact_lines  # noqa: E402
from tests.support.secrets import KEYS, NEAR_MISSES, SECRETS  # noqa: E402

MIB = 1 << 20
REPEATS = 5


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def log_lines(size: int, seed: int = 21) -> list[str]:
    """About `size` bytes of log lines of the usual kinds, with secrets here and there."""
    rng = random.Random(seed)
    paths = ["/v1/orders", "/v1/orders/8812/items", "/health", "/v2/cart?page=2", "/static/app.js"]
    services = ["orders", "cart", "payments", "db-primary.prod.example.com", "10.20.30.40"]
    lines: list[str] = []
    total = 0
    while total < size:
        roll = rng.random()
        n = rng.randrange(1, 99999)
        if roll < 0.01:
            line = rng.choice(SECRETS)[0]
        elif roll < 0.0105:
            lines += rng.choice(KEYS).splitlines()
            continue
        elif roll < 0.03:
            line = rng.choice(NEAR_MISSES)
        elif roll < 0.35:
            line = (
                f'10.0.{n % 256}.{n % 97} - - [01/Jun/2025:10:00:{n % 60:02d} +0000] "GET '
                f'{rng.choice(paths)} HTTP/1.1" {rng.choice([200, 200, 200, 404, 500])} {n} '
                f'"-" "Mozilla/5.0 (X11; Linux x86_64)" rt=0.{n % 1000:03d}'
            )
        elif roll < 0.65:
            line = (
                f'time=2025-06-01T10:00:{n % 60:02d}Z level=info msg="request done" '
                f"service={rng.choice(services)} duration_ms={n % 900} user_id={n} status=200 "
                f"request_id={rng.getrandbits(128):032x}"
            )
        elif roll < 0.85:
            line = (
                f'{{"ts":"2025-06-01T10:00:{n % 60:02d}Z","level":"warn","logger":"db.pool",'
                f'"msg":"slow query","duration_ms":{n % 5000},"rows":{n % 300},'
                f'"query":"SELECT id, total FROM orders WHERE customer_id = $1"}}'
            )
        elif roll < 0.95:
            line = (
                f"\tat com.example.orders.OrderService.place(OrderService.java:{n % 400})"
                if n % 2
                else f"goroutine {n % 90} [running]: main.(*Handler).ServeHTTP(0x{n:x})"
            )
        else:
            line = f"error: connection refused to {rng.choice(services)}:5432 (attempt {n % 5})"
        lines.append(line)
        total += len(line) + 1
    return lines


def best(work: Callable[[], object]) -> float:
    """The median of REPEATS timings of `work`, in seconds of this process's CPU time (the
    machine is shared: wall time would count the other processes' turns)."""
    times = []
    for _ in range(REPEATS):
        started = time.process_time()
        work()
        times.append(time.process_time() - started)
    return statistics.median(times)


def main() -> None:
    mib = float(sys.argv[1]) if len(sys.argv) > 1 else 4.0
    lines = log_lines(int(mib * MIB))
    size = sum(len(line) + 1 for line in lines) / MIB
    text = "\n".join(lines)
    print(
        f"machine: {cpu_model()}, {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}, {platform.system()} {platform.machine()}"
    )
    print(f"log text: {size:.2f} MiB, {len(lines)} lines, {len(text) // len(lines)} bytes a line")
    assert all(s not in "\n".join(redact_lines(lines)) for _, found in SECRETS for s in found)

    rows = [
        ("redact_lines (get_logs, the log reader)", best(lambda: redact_lines(lines))),
        ("redact per line (the log filter)", best(lambda: [redact(line) for line in lines])),
        ("redact of the whole text at once", best(lambda: redact(text))),
        ("pseudonyms (REDACT_IDENTIFIERS)", best(lambda: Pseudonyms(["orders"]).hide(text))),
    ]
    print(f"\n{'path':<44} {'ms per MiB':>11} {'MiB/s':>8}")
    for name, seconds in rows:
        print(f"{name:<44} {seconds / size * 1000:>11.1f} {size / seconds:>8.2f}")

    evidence = {"lines": 200, "error_lines": lines[:50], "tail": lines[-20:]}
    per_call = best(lambda: [redact_data(evidence) for _ in range(100)]) / 100
    print(
        f"\none get_logs result (200 lines read, 70 kept) through Registry.run: {per_call * 1e6:.0f} µs"
    )

    adversarial = {
        "'a=' x 512Ki": "a=" * (MIB // 2),
        "'password=' repeated": "password=" * (MIB // 9),
        "'key: ' repeated": "key: " * (MIB // 5),
        "'a=\"' (unclosed quotes)": 'a="' * (MIB // 3),
        "'x://' repeated": "x://" * (MIB // 4),
        "'http://a:' then 'b@' x 512Ki": "http://a:" + "b@" * (MIB // 2),
        "'basic ' then 1 MiB of base64": "basic " + "A" * MIB,
        "'eyJ' then 1 MiB of letters": "eyJ" + "a" * MIB,
        "BEGIN markers, one a line": "-----BEGIN A-----\n" * (MIB // 18),
        "END markers, one a line": "-----END A-----\n" * (MIB // 16),
        "1 MiB of one letter": "a" * MIB,
    }
    print(f"\n{'adversarial input, 1 MiB':<36} {'ms':>8}")
    for name, value in adversarial.items():
        print(f"{name:<36} {best(lambda value=value: redact(value)) * 1000:>8.1f}")


if __name__ == "__main__":
    main()
