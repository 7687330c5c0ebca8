"""Request body limit: a 413 when Content-Length says too much, and while reading when a chunked
body grows past the limit.

Either way the rest of the body is read and dropped first (up to DRAIN_BYTES, for at most
DRAIN_SECONDS), then the 413 is sent and the connection closed: a server that closes with unread
data in its socket makes the kernel answer with a reset, and the client (which is still sending)
never reads the 413, or cannot tell it from a network failure.
"""

from __future__ import annotations

import asyncio
import json

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY_BYTES = 1024 * 1024
# Every other endpoint takes at most a decision or a switch: a few KiB is plenty.
MAX_API_BODY_BYTES = 64 * 1024
WEBHOOK_PATH = "/webhook/alerts"
# Read and dropped before the 413; a client that sends more than this may see a reset.
DRAIN_BYTES = 16 * 1024 * 1024
DRAIN_SECONDS = 10.0
CLOSE = {"Connection": "close"}


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = (
            self.limit if scope.get("path") == WEBHOOK_PATH else min(self.limit, MAX_API_BODY_BYTES)
        )
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await drain(receive)
                await _too_large(send, limit)
                return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    if message.get("more_body", False):
                        await drain(receive)
                    # FastAPI passes an HTTPException from the body through; its handler answers.
                    raise HTTPException(413, too_large_message(limit), headers=CLOSE)
            return message

        await self.app(scope, counted, send)


async def drain(receive: Receive) -> int:
    """Read and drop the rest of the request body, within the bounds; the bytes dropped."""
    dropped = 0
    try:
        async with asyncio.timeout(DRAIN_SECONDS):
            while dropped <= DRAIN_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    break  # the client went away
                dropped += len(message.get("body", b""))
                if not message.get("more_body", False):
                    break
    except TimeoutError:
        pass
    return dropped


def too_large_message(limit: int) -> str:
    return f"request body is larger than {limit} bytes"


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"detail": too_large_message(limit)}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
