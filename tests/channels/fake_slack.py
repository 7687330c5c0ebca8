"""A local server that speaks the Slack Web API methods the agent uses (chat.postMessage,
chat.update, chat.postEphemeral) at the wire, for slack_sdk's WebClient with `base_url`, and the
signing of interaction payloads as Slack does it."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode


class FakeSlack(ThreadingHTTPServer):
    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.lock = threading.Lock()
        stamps = itertools.count(1)
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                method = self.path.rsplit("/", 1)[-1]
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if "json" in (self.headers.get("Content-Type") or ""):
                    args = json.loads(raw or b"{}")
                else:
                    args = {k: v[0] for k, v in parse_qs(raw.decode()).items()}
                if isinstance(args.get("blocks"), str):
                    args["blocks"] = json.loads(args["blocks"])
                if self.headers.get("Authorization") != f"Bearer {outer.token}":
                    reply: dict[str, Any] = {"ok": False, "error": "invalid_auth"}
                elif method == "chat.postMessage":
                    ts = f"{int(time.time())}.{next(stamps):06d}"
                    reply = {"ok": True, "channel": args.get("channel"), "ts": ts}
                elif method == "chat.update":
                    reply = {"ok": True, "channel": args.get("channel"), "ts": args.get("ts")}
                elif method == "chat.postEphemeral":
                    reply = {"ok": True, "message_ts": f"{int(time.time())}.999999"}
                else:
                    reply = {"ok": False, "error": "unknown_method"}
                with outer.lock:
                    outer.calls.append((method, args))
                body = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api/"

    def of(self, method: str) -> list[dict[str, Any]]:
        with self.lock:
            return [args for name, args in self.calls if name == method]


def click_body(user: str, action: str, value: str, channel: str, ts: str) -> bytes:
    """A block_actions payload as Slack posts it (form-encoded `payload`)."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower()},
        "channel": {"id": channel},
        "container": {"type": "message", "channel_id": channel, "message_ts": ts},
        "actions": [{"action_id": action, "block_id": "decision", "value": value}],
        "response_url": "https://hooks.slack.invalid/actions/1",
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def signed(secret: str, body: bytes, at: float | None = None) -> dict[str, str]:
    """Slack's headers for `body`: v0 HMAC-SHA256 of `v0:{timestamp}:{body}`."""
    stamp = str(int(at if at is not None else time.time()))
    base = f"v0:{stamp}:".encode() + body
    digest = hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/x-www-form-urlencoded",
    }
