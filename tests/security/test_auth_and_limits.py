"""Auth on every route, and the per-client rate limit over HTTP."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx

from devops_agent.server.ratelimit import RateLimiter, retry_after
from tests.server.conftest import Server
from tests.support.containers import wait_for

EXTRA_PATHS = {"/docs": ["get"], "/redoc": ["get"], "/openapi.json": ["get"]}
OPEN = {"/health"}
WEBHOOK = "/webhook/alerts"


def _operations(srv: Server) -> list[tuple[str, str]]:
    schema = srv.get("/openapi.json").json()
    paths: dict[str, list[str]] = {
        path: [m for m in ops if m in ("get", "post", "put", "patch", "delete")]
        for path, ops in schema["paths"].items()
    }
    paths.update(EXTRA_PATHS)
    found = []
    for path, methods in paths.items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        found += [(method, concrete) for method in methods]
    return found


def test_every_route_needs_the_token_in_the_header(server: Server) -> None:
    operations = _operations(server)
    assert len(operations) >= 20
    token = server.token
    checked = 0
    with httpx.Client(base_url=server.url, timeout=30, trust_env=False) as client:
        for method, path in operations:
            if path in OPEN:
                assert client.request(method, path).status_code == 200
                continue
            right = server.webhook_token if path == WEBHOOK else token
            other = token if path == WEBHOOK else server.webhook_token
            attempts: list[tuple[dict[str, str], dict[str, str]]] = [
                ({}, {}),
                ({"Authorization": "Bearer wrong"}, {}),
                ({"Authorization": f"Bearer {right}x"}, {}),
                ({"Authorization": f"Bearer {right[:-1]}"}, {}),
                ({"Authorization": f"Basic {right}"}, {}),
                ({"Authorization": right}, {}),
                ({"Authorization": "Bearer"}, {}),
                ({"Authorization": f"Bearer {other}"}, {}),  # the other token is not this one
                ({"X-API-Key": right, "Cookie": f"token={right}"}, {}),
                ({}, {"token": right, "access_token": right, "api_key": right}),
            ]
            for headers, params in attempts:
                response = client.request(method, path, headers=headers, params=params)
                assert response.status_code == 401, (method, path, headers, params)
                assert response.json() == {"detail": "unauthorized"}
                checked += 1
    print(f"\n[auth] {len(operations)} operations, {checked} refused requests")


def test_token_bucket() -> None:
    now = [0.0]
    limiter = RateLimiter(rate=2, burst=3, clock=lambda: now[0], max_clients=2)
    assert [limiter.check(("a", "api")) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.check(("a", "api")) == 0.5
    assert limiter.check(("b", "api")) == 0.0  # another client has its own bucket
    now[0] = 0.5
    assert limiter.check(("a", "api")) == 0.0  # refilled one
    limiter.check(("c", "api"))
    assert len(limiter.buckets) == 2  # bounded: the least recently seen is forgotten
    assert retry_after(0.01) == "1" and retry_after(2.2) == "3"


def test_rate_limit_over_http(make_server: Callable[..., Server]) -> None:
    # One token every ten seconds: however slow the machine, no token comes back while the
    # test sends its requests, so each count below is exact.
    srv = make_server(RATE_LIMIT_PER_SECOND="0.1", RATE_LIMIT_BURST="5")
    with srv.client() as client:
        codes = [client.get("/openapi.json").status_code for _ in range(8)]
        assert codes[:5] == [200] * 5, codes
        limited = client.get("/openapi.json")
        assert limited.status_code == 429
        assert limited.json() == {"detail": "too many requests; slow down"}
        wait = int(limited.headers["Retry-After"])
        assert 1 <= wait <= 10
        # liveness is never limited; the webhook's credential has its own bucket
        assert client.get("/health").status_code == 200
        hook = httpx.post(
            f"{srv.url}/webhook/alerts",
            content=b"{",
            headers={"Authorization": f"Bearer {srv.webhook_token}"},
            trust_env=False,
        )
        assert hook.status_code == 400
        # made-up tokens share one bucket per IP: they cannot mint fresh ones
        guesses = [
            httpx.get(
                f"{srv.url}/status", headers={"Authorization": f"Bearer guess{i}"}, trust_env=False
            ).status_code
            for i in range(8)
        ]
        assert guesses[:5] == [401] * 5 and 429 in guesses[5:], guesses
        # Once Retry-After has passed, the client is served again (polled, with a bound).
        wait_for(lambda: client.get("/status").status_code == 200, timeout=wait + 30, interval=0.2)
    # Alertmanager retries 5xx only: over the limit, its webhook gets 503, never a lost 429
    hook_codes = [srv.webhook({"status": "firing"}).status_code for _ in range(7)]
    assert hook_codes[:4] == [422] * 4 and hook_codes[-1] == 503, hook_codes
    print(f"\n[rate limit] 5 allowed, then 429 with Retry-After {wait}")
