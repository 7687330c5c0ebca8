"""The rules reasoner: deterministic diagnosis and planning for the common faults.

It reads only the evidence that root_cause gathered (container state, logs, resources, the
health of dependencies) and never the alert's free text, so a misleading annotation cannot steer
it. Each rule names its category, a one-sentence root cause, a confidence and the evidence used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from time import perf_counter
from typing import Any

from devops_agent.reasoning.base import Investigation
from devops_agent.reasoning.planning import builtin_catalog, plan
from devops_agent.reasoning.records import CallRecord
from devops_agent.state import HAPPENED, Diagnosis, Evidence, Plan
from devops_agent.workflows import Catalog

CONFIG_EXIT_CODES = {78: "EX_CONFIG", 126: "not executable", 127: "command not found"}
CONFIG_WORDS = (
    "config",
    "setting",
    "missing required",
    "required setting",
    "environment variable",
    "unknown option",
    "invalid option",
    "invalid value",
    "no such file",
    "permission denied",
)
DISK_WORDS = ("no space left on device", "disk full", "disk quota exceeded")
OVERLOAD_WORDS = ("queue", "latency", "too many requests", "overload", "backlog", "slow")
FAST_EXIT_S = 5.0
SLOW_PROBE_MS = 1000.0
CPU_THROTTLED_RATIO = 0.3
CPU_OF_LIMIT_PERCENT = 85.0
MEMORY_PERCENT = 90.0
CRASH_LOOP_RESTARTS = 3


@dataclass
class Observed:
    """The evidence about the target, pre-digested for the rules."""

    containers: list[dict[str, Any]]
    probe: dict[str, Any] | None
    errors: list[str]
    tail: list[str]
    resources: list[dict[str, Any]]
    deps_down: list[Evidence]
    used: list[Evidence]

    @property
    def text(self) -> str:
        return "\n".join(self.errors + self.tail).lower()

    def first_line(self, words: tuple[str, ...], errors_only: bool = False) -> str | None:
        for line in self.errors if errors_only else self.errors + self.tail:
            if any(word in line.lower() for word in words):
                return line.strip()
        return None


class RulesReasoner:
    """The embedded reasoner: the default without an LLM and the fallback when it fails."""

    name = "rules"

    def __init__(self, catalog: Catalog | None = None) -> None:
        self.catalog = catalog or builtin_catalog()

    async def diagnose(self, case: Investigation) -> Diagnosis:
        started = perf_counter()
        found = diagnose(case)
        ms = (perf_counter() - started) * 1000
        case.calls.append(CallRecord(reasoner=self.name, step="diagnose", latency_ms=ms).as_dict())
        return found

    async def plan(self, case: Investigation, diagnosis: Diagnosis) -> Plan:
        started = perf_counter()
        made = plan(case, diagnosis, self.catalog)
        ms = (perf_counter() - started) * 1000
        case.calls.append(CallRecord(reasoner=self.name, step="plan", latency_ms=ms).as_dict())
        return made


def _facts(case: Investigation) -> Observed:
    health = case.find("health_check")
    logs = case.find("get_logs")
    resources = case.find("check_resources")
    used = [e for e in (health, logs, resources) if e is not None and e.ok]
    dependencies = case.target.depends_on if case.target else []
    deps_down = [
        e
        for e in case.evidence
        if e.source == "dependency"
        and e.target != (case.target.name if case.target else "")
        and not e.data.get("healthy", True)
    ]
    # Dependencies declared by label come first in the evidence, then those named in the logs.
    deps_down.sort(key=lambda e: (e.target not in dependencies, e.target))
    return Observed(
        containers=(health.data.get("containers", []) if health and health.ok else []),
        probe=(health.data.get("probe") if health and health.ok else None),
        errors=(logs.data.get("error_lines", []) if logs and logs.ok else []),
        tail=(logs.data.get("tail", []) if logs and logs.ok else []),
        resources=[
            r
            for r in (resources.data.get("containers", []) if resources and resources.ok else [])
            if r.get("running")
        ],
        deps_down=deps_down,
        used=used,
    )


def _diag(
    category: str, cause: str, confidence: float, facts: Observed, *extra: Evidence
) -> Diagnosis:
    summaries = [e.summary for e in (*facts.used, *extra)]
    return Diagnosis(
        category=category,
        root_cause=cause,
        confidence=confidence,
        evidence=summaries,
        reasoner="rules",
    )


def _restarted_before(case: Investigation, target: str) -> bool:
    return any(
        a.operation == "restart_service" and a.target == target and a.status in HAPPENED
        for a in case.actions
    )


def _fixed_moments_ago(case: Investigation) -> str | None:
    """A crash within CRASH_LOOP_WINDOW after a fix of a crash held: it keeps coming back."""
    now = datetime.now(UTC)
    for (category, operation), track in case.history.items():
        when = track.last_held_at
        if category in ("crash", "crash_loop") and when is not None:
            ago = (now - when).total_seconds()
            if ago < case.crash_loop_window:
                return (
                    f"{ago:.0f}s after {operation} fixed the last crash "
                    f"(CRASH_LOOP_WINDOW={case.crash_loop_window:g}s)"
                )
    return None


def diagnose(case: Investigation) -> Diagnosis:
    """Name the category, the root cause, a confidence and the evidence it rests on."""
    if case.target is None:
        return Diagnosis(
            category="unknown",
            root_cause="The alert names no service that the backend knows, so there is nothing to inspect.",
            confidence=0.9,
            evidence=[f"labels: {a.labels}" for a in case.alerts[:3]],
        )
    name = case.target.name
    health = case.find("health_check")
    if health is None or not health.ok:
        why = health.summary if health else "no health evidence was gathered"
        return Diagnosis(
            category="unknown",
            root_cause=f"The state of {name} could not be read: {why}.",
            confidence=0.3,
            evidence=[why],
        )
    facts = _facts(case)
    cs = facts.containers
    down = [c for c in cs if not c.get("running") and not c.get("paused")]
    paused = [c for c in cs if c.get("paused")]
    oom = [c for c in cs if c.get("oom_killed")]
    restarting = [c for c in cs if c.get("restarting")]

    if oom:
        c = oom[0]
        limit = c.get("memory_limit") or 0
        size = f"{limit / 2**20:.0f} MiB" if limit else "its"
        return _diag(
            "memory_exhaustion",
            f"{c['name']} was killed by the kernel's OOM killer (exit {c.get('exit_code')}): "
            f"the memory limit of {size} is too small for what it allocates.",
            0.95,
            facts,
        )
    disk_line = facts.first_line(DISK_WORDS)
    if disk_line:
        return _diag(
            "disk_full",
            f"{name} cannot write: its filesystem is full ({disk_line!r}); a restart frees nothing.",
            0.9,
            facts,
        )
    if down or restarting:
        c = (down or restarting)[0]
        exit_code = c.get("exit_code")
        ran = c.get("ran_for_s")
        # Only an error line about the configuration: "configuration loaded" at start-up before
        # an ordinary crash is not a configuration error (eval: red-herring-startup-log).
        config_line = facts.first_line(CONFIG_WORDS, errors_only=True)
        if exit_code in CONFIG_EXIT_CODES or (
            config_line and ran is not None and ran < FAST_EXIT_S
        ):
            meaning = CONFIG_EXIT_CODES.get(exit_code or 0, f"exit code {exit_code}")
            detail = f" and logged {config_line!r}" if config_line else ""
            return _diag(
                "config_error",
                f"{c['name']} exits at start ({meaning}, after {ran}s){detail}: its configuration is "
                "wrong, which a restart cannot fix.",
                0.9,
                facts,
            )
        if facts.deps_down:
            return _dependency(name, facts)
        again = _fixed_moments_ago(case)
        if (
            restarting
            or c.get("restart_count", 0) >= CRASH_LOOP_RESTARTS
            or _restarted_before(case, name)
            or again
        ):
            after = (
                ", and again after the agent restarted it"
                if _restarted_before(case, name)
                else f", {again}"
                if again
                else ""
            )
            return _diag(
                "crash_loop",
                f"{c['name']} keeps exiting (exit {exit_code}, {c.get('restart_count', 0)} restarts"
                f"{after}).",
                0.85,
                facts,
            )
        last = (facts.errors or facts.tail or ["no log lines"])[-1].strip()
        return _diag(
            "crash",
            f"The process of {c['name']} exited with code {exit_code} after {ran}s; last log line: {last!r}.",
            0.9 if exit_code not in (0, None) else 0.75,
            facts,
        )
    if paused:
        return _diag(
            "hang", f"{paused[0]['name']} is paused: it is running but cannot answer.", 0.95, facts
        )

    # Every container is running from here on.
    if facts.deps_down:
        return _dependency(name, facts)
    mem = max(facts.resources, key=lambda r: r.get("memory_percent", 0), default=None)
    if mem and mem.get("memory_limit") and mem.get("memory_percent", 0) >= MEMORY_PERCENT:
        return _diag(
            "memory_exhaustion",
            f"{mem['name']} uses {mem['memory_percent']:.0f}% of its memory limit and will be OOM-killed; "
            "the limit is too small or it leaks.",
            0.8,
            facts,
        )
    cpu = max(facts.resources, key=lambda r: r.get("throttled_ratio", 0), default=None)
    if (
        cpu
        and cpu.get("cpu_limit_cpus")
        and (
            cpu.get("throttled_ratio", 0) >= CPU_THROTTLED_RATIO
            or cpu.get("cpu_of_limit_percent", 0) >= CPU_OF_LIMIT_PERCENT
        )
    ):
        return _diag(
            "cpu_saturation",
            f"{cpu['name']} is at its CPU quota of {cpu['cpu_limit_cpus']:g} CPUs "
            f"({cpu.get('cpu_of_limit_percent', 0):.0f}% of it, throttled in "
            f"{cpu.get('throttled_ratio', 0) * 100:.0f}% of periods).",
            0.85,
            facts,
        )
    probe = facts.probe
    unhealthy = [c for c in cs if c.get("health") == "unhealthy"]
    if probe and probe.get("error") == "timeout" or (unhealthy and not probe):
        return _diag(
            "hang",
            f"{name} is running but does not answer its health probe"
            f"{' (' + probe['summary'] + ')' if probe else ''} while its CPU and memory are normal.",
            0.85,
            facts,
        )
    if probe and probe.get("ok") and probe.get("latency_ms", 0) >= SLOW_PROBE_MS:
        line = facts.first_line(OVERLOAD_WORDS)
        return _diag(
            "overload",
            f"{name} answers slowly ({probe['summary']}) while CPU and memory are within limits"
            f"{'; it logs ' + repr(line) if line else ''}: it has more work than it can serve.",
            0.8 if line else 0.65,
            facts,
        )
    if probe and not probe.get("ok"):
        last = (facts.errors or ["no error lines"])[-1].strip()
        return _diag(
            "unknown",
            f"{name} runs but its health probe fails ({probe['summary']}); the logs do not say why "
            f"(last error line: {last!r}).",
            0.4,
            facts,
        )
    checks = f"its probe answers ({probe['summary']})" if probe else "it is running"
    return _diag(
        "no_fault",
        f"{name} is healthy: {checks}, and its resources are within limits.",
        0.9 if probe else 0.7,
        facts,
    )


def _dependency(name: str, facts: Observed) -> Diagnosis:
    deps = facts.deps_down
    names = ", ".join(d.target for d in deps)
    return _diag(
        "dependency_failure",
        f"{name} fails because the service it depends on ({names}) is down.",
        0.85,
        facts,
        *deps,
    )
