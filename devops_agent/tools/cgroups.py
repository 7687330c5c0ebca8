"""CPU and memory of a container read from its cgroup files, when the engine runs on this host.

Docker's stats API answers at its collector's next tick, a second later on the engines seen here
(with `one-shot` too), and root_cause waits for check_resources: that second was most of the
time from alert to action on a running container. When the agent runs on the Docker host (or has
the host's /sys/fs/cgroup mounted), the same counters are files: two reads half a second apart
give CPU use and throttling. Anything unreadable gives None, and the caller falls
back to the stats API. cgroup v1 (cpu, cpuacct, memory hierarchies) and v2 (unified) are both
read, under the cgroupfs driver's parent (`docker`, or the container's CgroupParent) and the
systemd driver's `system.slice/docker-<id>.scope`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
WINDOW = 0.5  # seconds between the two reads: five CFS periods of 100 ms


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic()
    cpu_ns: int
    periods: int
    throttled: int
    memory: int  # bytes in use, without the inactive page cache (as `docker stats` counts)


@dataclass(frozen=True)
class Usage:
    """What happened between two samples."""

    cpu_percent: float  # of one CPU
    periods: int
    throttled: int
    throttled_total: int
    memory: int


def _stat(path: Path) -> dict[str, int]:
    pairs = (line.split() for line in path.read_text().splitlines())
    return {p[0]: int(p[1]) for p in pairs if len(p) == 2}


class Reader:
    """The cgroup files of one container."""

    def __init__(self, cpu: Path, cpuacct: Path | None, memory: Path, v2: bool):
        self.cpu, self.cpuacct, self.memory, self.v2 = cpu, cpuacct, memory, v2

    def sample(self) -> Sample:
        cpu = _stat(self.cpu / "cpu.stat")
        memory = _stat(self.memory / "memory.stat")
        if self.v2:
            used = int((self.memory / "memory.current").read_text())
            return Sample(
                time.monotonic(),
                cpu["usage_usec"] * 1000,
                cpu.get("nr_periods", 0),
                cpu.get("nr_throttled", 0),
                max(used - memory.get("inactive_file", 0), 0),
            )
        assert self.cpuacct is not None
        used = int((self.memory / "memory.usage_in_bytes").read_text())
        return Sample(
            time.monotonic(),
            int((self.cpuacct / "cpuacct.usage").read_text()),
            cpu.get("nr_periods", 0),
            cpu.get("nr_throttled", 0),
            max(used - memory.get("total_inactive_file", 0), 0),
        )


def locate(container_id: str, cgroup_parent: str = "", root: Path = ROOT) -> Reader | None:
    """The container's cgroup files under `root`, or None when they are not there (or not
    readable by this process)."""
    try:
        return _locate(container_id, cgroup_parent, root)
    except OSError:
        return None


def _locate(container_id: str, cgroup_parent: str, root: Path) -> Reader | None:
    parent = cgroup_parent.strip("/") or "docker"
    relatives = [f"{parent}/{container_id}", f"system.slice/docker-{container_id}.scope"]
    if (root / "cgroup.controllers").exists():  # v2: one unified hierarchy
        for relative in relatives:
            found = root / relative
            if (found / "cpu.stat").exists() and (found / "memory.current").exists():
                return Reader(found, None, found, v2=True)
        return None
    for relative in relatives:
        cpu = next(
            (d for d in (root / "cpu", root / "cpu,cpuacct") if (d / relative).exists()), None
        )
        cpuacct = next(
            (d for d in (root / "cpuacct", root / "cpu,cpuacct") if (d / relative).exists()), None
        )
        memory = root / "memory" / relative
        if cpu and cpuacct and memory.exists():
            return Reader(cpu / relative, cpuacct / relative, memory, v2=False)
    return None


def measure(readers: list[Reader], window: float = WINDOW) -> list[Usage] | None:
    """Each reader's usage over `window` seconds (None when a file cannot be read)."""
    try:
        first = [r.sample() for r in readers]
        time.sleep(window)
        second = [r.sample() for r in readers]
    except (OSError, ValueError, KeyError):
        return None
    return [
        Usage(
            cpu_percent=(b.cpu_ns - a.cpu_ns) / max(b.at - a.at, 1e-6) / 1e9 * 100,
            periods=b.periods - a.periods,
            throttled=b.throttled - a.throttled,
            throttled_total=b.throttled,
            memory=b.memory,
        )
        for a, b in zip(first, second, strict=True)
    ]
