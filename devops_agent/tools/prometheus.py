"""An async client for Prometheus' HTTP API, and the evidence root_cause takes from it.

Like the other tools it never raises for infrastructure errors: every failure (Prometheus down,
slow, answering garbage, rejecting the query) comes back as a typed `QueryResult`, so a run goes
on with the evidence it has when Prometheus is away.

Queries name the target by the `service` label, which the scrape configs in `deploy/` set on
every target (the container or Compose service name), so the same name works in alerts, in
PromQL and in Docker.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from devops_agent.errors import short_error
from devops_agent.state import Evidence
from devops_agent.tools.registry import ErrorKind

DEFAULT_TIMEOUT = 3.0
TREND_WINDOW = 600.0  # seconds of memory history looked at
TREND_STEP = 15.0


@dataclass
class QueryResult:
    """One answer of the HTTP API: `result` is the `data.result` list (or a scalar's pair)."""

    ok: bool
    query: str
    result_type: str = ""
    result: list[Any] = field(default_factory=list)
    error: ErrorKind | None = None
    message: str = ""

    def values(self) -> list[float]:
        """The latest value of each series of an instant vector (NaN/Inf left out)."""
        found: list[float] = []
        for series in self.result if self.result_type == "vector" else []:
            number = _number((series.get("value") or [None, None])[1])
            if number is not None:
                found.append(number)
        return found

    def first(self) -> float | None:
        values = self.values()
        return values[0] if values else None


def _number(raw: Any) -> float | None:
    try:
        value = float(raw)
    except (TypeError, ValueError):
        return None
    return value if value == value and abs(value) != float("inf") else None


class PrometheusClient:
    """Instant and range queries against one Prometheus (`base_url` without /api/v1)."""

    def __init__(
        self,
        base_url: str,
        timeout: float = DEFAULT_TIMEOUT,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._client = client

    async def query(self, expr: str, at: float | None = None) -> QueryResult:
        """GET /api/v1/query: the value of `expr` now (or at the Unix time `at`)."""
        params: dict[str, str] = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return await self._get("/api/v1/query", expr, params)

    async def query_range(self, expr: str, start: float, end: float, step: float) -> QueryResult:
        """GET /api/v1/query_range: `expr` from `start` to `end` every `step` seconds."""
        params = {
            "query": expr,
            "start": f"{start:.3f}",
            "end": f"{end:.3f}",
            "step": f"{max(step, 0.001):g}",
        }
        return await self._get("/api/v1/query_range", expr, params)

    async def _get(self, path: str, expr: str, params: dict[str, str]) -> QueryResult:
        url = self.base_url + path
        try:
            if self._client is not None:
                response = await self._client.get(url, params=params, timeout=self.timeout)
            else:
                async with httpx.AsyncClient(timeout=self.timeout, trust_env=False) as client:
                    response = await client.get(url, params=params)
        except httpx.TimeoutException:
            return QueryResult(
                False, expr, error="timeout", message=f"no answer within {self.timeout:g}s"
            )
        except httpx.HTTPError as exc:
            return QueryResult(False, expr, error="unreachable", message=short_error(exc))
        return _parse(expr, response)


def _parse(expr: str, response: httpx.Response) -> QueryResult:
    """Prometheus answers 400/422 for bad queries and 503/5xx when it cannot answer now."""
    try:
        body = response.json()
    except ValueError:
        return QueryResult(
            False, expr, error="failed", message=f"HTTP {response.status_code}: not JSON"
        )
    if not isinstance(body, dict):
        return QueryResult(False, expr, error="failed", message="answer is not a JSON object")
    if body.get("status") != "success":
        kind: ErrorKind = "invalid" if response.status_code in (400, 422) else "failed"
        message = f"{body.get('errorType', 'error')}: {body.get('error', '')}"[:300]
        return QueryResult(False, expr, error=kind, message=message)
    data = body.get("data") or {}
    result = data.get("result")
    if data.get("resultType") in ("scalar", "string"):
        result = [{"metric": {}, "value": result}]
        return QueryResult(True, expr, "vector", result)
    return QueryResult(True, expr, str(data.get("resultType", "")), list(result or []))


def quote(value: str) -> str:
    """A PromQL string literal for a label value (label values are data, never syntax)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def service_queries(service: str) -> dict[str, str]:
    """The instant queries behind the evidence, by the name they get in its data."""
    s = f"service={quote(service)}"
    return {
        "up": f"min(up{{{s}}})",
        # A health probe Prometheus records: the blackbox exporter's, or the service's own.
        "health_up": f"min(probe_success{{{s}}} or health_check_up{{{s}}})",
        "error_rate": (
            f'sum(rate(http_requests_total{{{s},code=~"5.."}}[1m]))'
            f" / sum(rate(http_requests_total{{{s}}}[1m]))"
        ),
        "latency_p99_s": (
            "histogram_quantile(0.99, sum by (le) "
            f"(rate(http_request_duration_seconds_bucket{{{s}}}[1m])))"
        ),
        "memory_limit_ratio": (
            f"max(process_resident_memory_bytes{{{s}}}) / max(memory_limit_bytes{{{s}}} > 0)"
        ),
    }


def memory_query(service: str) -> str:
    return f"max(process_resident_memory_bytes{{service={quote(service)}}})"


def _trend(result: QueryResult) -> dict[str, Any] | None:
    """First, last and peak of the memory series, and its slope in bytes per minute."""
    if not result.ok or result.result_type != "matrix" or not result.result:
        return None
    points = [
        (float(t), v)
        for t, raw in result.result[0].get("values") or []
        if (v := _number(raw)) is not None
    ]
    if len(points) < 2:
        return None
    (t0, first), (t1, last) = points[0], points[-1]
    slope = (last - first) / (t1 - t0) * 60 if t1 > t0 else 0.0
    return {
        "first_bytes": first,
        "last_bytes": last,
        "peak_bytes": max(v for _, v in points),
        "bytes_per_minute": round(slope, 1),
        "window_s": round(t1 - t0),
    }


def _describe(service: str, data: dict[str, Any]) -> str:
    parts: list[str] = []
    up = data.get("up")
    parts.append("scrape up" if up == 1 else "scrape DOWN" if up == 0 else "no scrape target")
    if (health := data.get("health_up")) is not None:
        parts.append("health probe passing" if health == 1 else "health probe FAILING")
    if (rate := data.get("error_rate")) is not None:
        parts.append(f"5xx rate {rate:.1%}")
    if (p99 := data.get("latency_p99_s")) is not None:
        parts.append(f"p99 latency {p99 * 1000:.0f} ms")
    if (ratio := data.get("memory_limit_ratio")) is not None:
        parts.append(f"memory at {ratio:.0%} of its limit")
    trend = data.get("memory_trend")
    if trend:
        mib = trend["last_bytes"] / 2**20
        parts.append(f"memory {mib:.1f} MiB ({trend['bytes_per_minute'] / 2**20:+.2f} MiB/min)")
    return f"prometheus {service}: " + ", ".join(parts)


async def service_evidence(
    base_url: str, service: str, timeout: float = DEFAULT_TIMEOUT
) -> Evidence:
    """Error rate, latency and memory trend of `service`, as one Evidence (ok=False when
    Prometheus could not answer: the run then goes on without it)."""
    queries = service_queries(service)
    now = time.time()
    async with httpx.AsyncClient(timeout=timeout, trust_env=False) as http:
        prom = PrometheusClient(base_url, timeout, client=http)
        answers = await asyncio.gather(
            *(prom.query(expr, at=now) for expr in queries.values()),
            prom.query_range(memory_query(service), now - TREND_WINDOW, now, TREND_STEP),
        )
    *instant, memory = answers
    failed = [a for a in answers if not a.ok]
    if len(failed) == len(answers):
        reason = failed[0]
        return Evidence(
            source="prometheus",
            target=service,
            ok=False,
            summary=f"prometheus {service}: {reason.error} at {base_url}: {reason.message}",
            data={"error": reason.error, "url": base_url},
        )
    data: dict[str, Any] = {
        name: answer.first() for name, answer in zip(queries, instant, strict=True)
    }
    data["memory_trend"] = _trend(memory)
    data["failed_queries"] = [a.query for a in failed]
    return Evidence(
        source="prometheus", target=service, summary=_describe(service, data), data=data
    )
