"""Request rate limit per client, as ASGI middleware: a token bucket per (IP, credential).

The credential is which configured token the request presents (the API token, the webhook
token, or none/other), never the raw header: a client cannot mint fresh buckets by sending
made-up tokens, and Alertmanager (webhook token) does not share a bucket with a person's
scripts on the same host. The burst is generous so an Alertmanager flush is never refused;
over the limit the answer is 429 with Retry-After, before authentication or the body is read.
Alertmanager itself gets 503 with Retry-After instead: its webhook notifier retries 5xx only, so
a 429 would drop the notification, while the contract is that an alert the service could not
take now is retried. /health is exempt: liveness must say whether the process serves, not
whether a client is noisy.
"""

from __future__ import annotations

import hmac
import json
import math
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from devops_agent.server.auth import WEBHOOK_PATH, bearer

EXEMPT_PATHS = frozenset({"/health"})
MAX_CLIENTS = 10_000  # buckets kept; the least recently seen are forgotten (they were full)


class TokenBucket:
    """`rate` tokens per second up to `burst`; each request takes one."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: int, now: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = now

    def take(self, now: float) -> float:
        """0.0 when a token was taken, else the seconds until one is available."""
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate


class RateLimiter:
    """The buckets of every client, bounded in number."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = MAX_CLIENTS,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.max_clients = max_clients
        self.buckets: OrderedDict[tuple[str, str], TokenBucket] = OrderedDict()

    def check(self, key: tuple[str, str]) -> float:
        """0.0 when the request may go on, else the seconds to wait."""
        now = self.clock()
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = TokenBucket(self.rate, self.burst, now)
            if len(self.buckets) > self.max_clients:
                self.buckets.popitem(last=False)
        else:
            self.buckets.move_to_end(key)
        return bucket.take(now)


def retry_after(wait: float) -> str:
    """Whole seconds, at least 1 (the header takes an integer)."""
    return str(max(1, math.ceil(wait)))


class RateLimitMiddleware:
    def __init__(
        self, app: ASGIApp, rate: float, burst: int, credentials: dict[str, str | None]
    ) -> None:
        self.app = app
        self.limiter = RateLimiter(rate, burst) if rate > 0 else None
        self.credentials = {k: v.encode() for k, v in credentials.items() if v}

    def credential(self, scope: Scope) -> str:
        """Which configured token the request presents (constant-time), or "none"."""
        given = bearer(scope)
        if given is not None:
            for name, token in self.credentials.items():
                if hmac.compare_digest(given, token):
                    return name
        return "none"

    def is_alertmanager(self, scope: Scope, credential: str) -> bool:
        """The webhook with its token (or any caller when WEBHOOK_TOKEN is unset)."""
        if scope.get("path") != WEBHOOK_PATH:
            return False
        return credential == "webhook" or "webhook" not in self.credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.limiter is None or scope["type"] != "http" or scope.get("path", "") in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        ip = str(client[0]) if client else "-"
        credential = self.credential(scope)
        wait = self.limiter.check((ip, credential))
        if wait <= 0:
            await self.app(scope, receive, send)
            return
        status = 503 if self.is_alertmanager(scope, credential) else 429
        body = json.dumps({"detail": "too many requests; slow down"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"retry-after", retry_after(wait).encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
