"""A scripted OpenAI-compatible server: FastAPI under uvicorn on a free port, in a thread.

It serves `POST /v1/chat/completions` from a queue of `Reply` objects (or one function of the
request), as JSON or as Server-Sent Events when the client streams, with usage counts, tool
calls, HTTP errors with Retry-After, and delays. Every request body it received is kept in
`requests`, so tests can assert what the real langchain-openai client sent. `Inbox` is a
webhook receiver that keeps what the agent notifies.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

_ids = itertools.count(1)


@dataclass
class Reply:
    """One scripted answer: a message (content and/or tool calls), or an HTTP error, after a delay."""

    content: str | None = None
    tool_calls: list[tuple[str, dict[str, Any] | str]] = field(default_factory=list)
    status: int = 200
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    usage: tuple[int, int] = (120, 30)


def call(name: str, **args: Any) -> tuple[str, dict[str, Any]]:
    return name, args


def tools(*calls: tuple[str, dict[str, Any] | str]) -> Reply:
    """A turn that calls tools."""
    return Reply(tool_calls=list(calls))


def answer(name: str, **args: Any) -> Reply:
    """A turn that submits an answer through the answer tool (function calling)."""
    return Reply(tool_calls=[(name, args)])


def text(content: str) -> Reply:
    return Reply(content=content)


def error(status: int, retry_after_ms: int = 10) -> Reply:
    return Reply(status=status, headers={"retry-after-ms": str(retry_after_ms)})


Responder = Callable[[dict[str, Any]], Reply]


def _tool_calls(reply: Reply) -> list[dict[str, Any]]:
    return [
        {
            "id": f"call_{next(_ids)}",
            "type": "function",
            "function": {
                "name": name,
                "arguments": args if isinstance(args, str) else json.dumps(args),
            },
        }
        for name, args in reply.tool_calls
    ]


def _usage(reply: Reply) -> dict[str, int]:
    prompt, completion = reply.usage
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _completion(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    calls = _tool_calls(reply)
    message: dict[str, Any] = {"role": "assistant", "content": reply.content}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{next(_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model", "scripted"),
        "choices": [
            {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}
        ],
        "usage": _usage(reply),
    }


def _chunks(body: dict[str, Any], reply: Reply) -> Iterator[str]:
    base = {
        "id": f"chatcmpl-{next(_ids)}",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model", "scripted"),
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
        choice = {"index": 0, "delta": delta, "finish_reason": finish}
        return f"data: {json.dumps({**base, 'choices': [choice]})}\n\n"

    yield chunk({"role": "assistant", "content": ""})
    if reply.content:
        half = len(reply.content) // 2
        for piece in (reply.content[:half], reply.content[half:]):
            yield chunk({"content": piece})
    calls = _tool_calls(reply)
    for i, tc in enumerate(calls):
        head = {**tc, "function": {"name": tc["function"]["name"], "arguments": ""}}
        yield chunk({"tool_calls": [{"index": i, **head}]})
        args = tc["function"]["arguments"]
        for piece in (args[: len(args) // 2], args[len(args) // 2 :]):
            yield chunk({"tool_calls": [{"index": i, "function": {"arguments": piece}}]})
    yield chunk({}, "tool_calls" if calls else "stop")
    if (body.get("stream_options") or {}).get("include_usage"):
        yield f"data: {json.dumps({**base, 'choices': [], 'usage': _usage(reply)})}\n\n"
    yield "data: [DONE]\n\n"


class ScriptedLLM:
    """The scripted model. `push` replies in order; `responder` answers when the queue is empty."""

    def __init__(self) -> None:
        self.replies: deque[Reply] = deque()
        self.responder: Responder | None = None
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.app = FastAPI()
        self.app.post("/v1/chat/completions")(self._completions)

    def push(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    def reset(self) -> None:
        self.replies.clear()
        self.responder = None
        self.requests.clear()
        self.headers.clear()

    async def _completions(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        self.headers.append(dict(request.headers))
        if self.replies:
            reply = self.replies.popleft()
        elif self.responder is not None:
            reply = self.responder(body)
        else:
            reply = Reply(status=500, content="the script is exhausted")
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status != 200:
            payload = {
                "error": {
                    "message": reply.content or f"scripted {reply.status}",
                    "type": "scripted",
                }
            }
            return JSONResponse(payload, status_code=reply.status, headers=reply.headers)
        if body.get("stream"):
            return StreamingResponse(_chunks(body, reply), media_type="text/event-stream")
        return JSONResponse(_completion(body, reply))


class Inbox:
    """A webhook receiver (NOTIFY_WEBHOOK_URL) that keeps every JSON body POSTed to `/hook`."""

    def __init__(self) -> None:
        self.bodies: list[Any] = []
        self.app = FastAPI()
        self.app.post("/hook")(self._receive)

    async def _receive(self, request: Request) -> Response:
        self.bodies.append(await request.json())
        return Response(status_code=204)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerThread:
    """uvicorn serving an app on 127.0.0.1:<free port> in a daemon thread."""

    def __init__(self, app: FastAPI) -> None:
        self.port = _free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the scripted LLM server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
