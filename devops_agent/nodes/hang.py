"""Telling a hung service from a slow one without always waiting PROBE_TIMEOUT.

root_cause probes the target first with PROBE_QUICK_TIMEOUT. No answer that fast is taken as a
hang only when something else has already seen the service not answering, and nothing shows it
busy:

- seen not answering: Docker's HEALTHCHECK reports it unhealthy, or Prometheus cannot scrape it
  (`up` 0), or the health probe that Prometheus records fails (`probe_success` of the blackbox
  exporter, or `health_check_up`, is 0);
- busy: a log line about queues, latency or overload, a container at its CPU quota, or requests
  that Prometheus measures completing slowly (p99 latency above the quick timeout).

Missing evidence never counts as "not busy": when the logs or the resources could not be read,
the full probe decides. Otherwise root_cause probes again with the full PROBE_TIMEOUT, as a
careful person would: a slow service answers that one, a hung one does not. So a hang costs the
quick timeout when the monitoring agrees. The limit of this: a service that is slow without any
sign of load, while its own health check (or Prometheus') already fails, is taken for hung and
restarted, as a failing liveness probe would have it in Kubernetes; set PROBE_QUICK_TIMEOUT to
PROBE_TIMEOUT to always wait.
"""

from __future__ import annotations

from typing import Any

from devops_agent.reasoning.rules import CPU_OF_LIMIT_PERCENT, CPU_THROTTLED_RATIO, OVERLOAD_WORDS
from devops_agent.tools.registry import OperationResult


def probe_timed_out(health: OperationResult) -> bool:
    probe = health.data.get("probe") if health.ok else None
    return bool(probe and probe.get("error") == "timeout")


def signs_of_load(
    logs: OperationResult,
    resources: OperationResult,
    prometheus: list[dict[str, Any]],
    quick_timeout: float,
) -> str | None:
    """What shows the service busy (so it may just be slow), or None. Evidence that could not
    be read counts as busy: it cannot show the opposite."""
    if not logs.ok or not resources.ok:
        return "its logs or resources could not be read"
    for line in [*logs.data.get("error_lines", []), *logs.data.get("tail", [])]:
        if any(word in line.lower() for word in OVERLOAD_WORDS):
            return f"it logs {line.strip()[:200]!r}"
    for usage in resources.data.get("containers", []):
        if usage.get("cpu_limit_cpus") and (
            usage.get("cpu_of_limit_percent", 0) >= CPU_OF_LIMIT_PERCENT
            or usage.get("throttled_ratio", 0) >= CPU_THROTTLED_RATIO
        ):
            return f"{usage.get('name')} is at its CPU quota"
        if usage.get("cpu_percent", 0) >= CPU_OF_LIMIT_PERCENT:  # no quota: a busy core
            return f"{usage.get('name')} keeps a CPU {usage['cpu_percent']:.0f}% busy"
    for evidence in prometheus:
        p99 = evidence.get("data", {}).get("latency_p99_s") if evidence.get("ok") else None
        if p99 is not None and p99 >= quick_timeout:
            return f"Prometheus measures requests completing in {p99 * 1000:.0f} ms (p99)"
    return None


def seen_not_answering(health: OperationResult, prometheus: list[dict[str, Any]]) -> str | None:
    """Who else saw the service not answering (Docker's HEALTHCHECK of the probed container,
    Prometheus), or None."""
    probed = (health.data.get("probe") or {}).get("container")
    unhealthy = [
        c["name"]
        for c in health.data.get("containers", [])
        if c.get("health") == "unhealthy" and probed in (None, c["name"])
    ]
    if unhealthy:
        return f"Docker's HEALTHCHECK reports {', '.join(unhealthy)} unhealthy"
    for evidence in prometheus:
        data = evidence.get("data", {}) if evidence.get("ok") else {}
        if data.get("up") == 0:
            return "Prometheus cannot scrape it (up 0)"
        if data.get("health_up") == 0:
            return "its health check fails in Prometheus too (probe_success/health_check_up 0)"
    return None


def confirmed_hang(
    health: OperationResult,
    logs: OperationResult,
    resources: OperationResult,
    prometheus: list[dict[str, Any]],
    quick_timeout: float,
) -> tuple[str | None, str]:
    """(why it is hung, None) when the quick probe's silence is confirmed; else (None, why the
    full probe is needed)."""
    busy = signs_of_load(logs, resources, prometheus, quick_timeout)
    if busy:
        return None, f"it may only be slow: {busy}"
    seen = seen_not_answering(health, prometheus)
    if seen is None:
        return None, "nothing else has seen it not answering"
    return seen, ""
