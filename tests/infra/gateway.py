"""A real `devops-agent gateway serve` process, and a proxy that loses answers on the way."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.containers import free_port, wait_for

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Gateway:
    url: str
    token: str
    proc: subprocess.Popen[bytes]
    db: Path
    log: Path

    def healthy(self) -> bool:
        try:
            r = httpx.get(
                self.url + "/health",
                headers={"Authorization": f"Bearer {self.token}"},
                timeout=2,
                trust_env=False,
            )
        except httpx.HTTPError:
            return False
        return r.status_code == 200

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def post(self, path: str, body: dict, token: str | None = None) -> httpx.Response:
        return httpx.post(
            self.url + path,
            json=body,
            headers={"Authorization": f"Bearer {token or self.token}"},
            timeout=120,
            trust_env=False,
        )


@contextlib.contextmanager
def gateway(directory: Path, token: str, port: int | None = None, **env: str) -> Iterator[Gateway]:
    """Start the gateway (its own DATA_DIR under `directory`) and wait until it answers."""
    directory.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    log = directory / f"gateway-{port}.log"
    full_env = {
        **os.environ,
        "GATEWAY_TOKEN": token,
        "DATA_DIR": str(directory),
        "INFRA_BACKEND": "docker",
        "PYTHONPATH": str(REPO),
        **env,
    }
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "devops_agent", "gateway", "serve", "--port", str(port)],
            env=full_env,
            cwd=directory,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    gw = Gateway(f"http://127.0.0.1:{port}", token, proc, directory / "gateway.db", log)
    try:
        wait_for(lambda: gw.healthy() or proc.poll() is not None, timeout=90, what="the gateway")
        assert proc.poll() is None, log.read_text()
        yield gw
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


def _read_message(sock: socket.socket) -> bytes:
    """One HTTP/1.1 message (headers and a Content-Length body) from `sock`."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


@dataclass
class LosingProxy:
    """Forwards each request to the gateway; the answer to the first request that contains
    every one of `lose` is read from the gateway and then dropped (the connection closed,
    nothing sent)."""

    upstream: int
    lose: tuple[bytes, ...]
    port: int = field(default_factory=free_port)
    seen: list[bytes] = field(default_factory=list)
    lost: int = 0

    def __post_init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", self.port))
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(client,), daemon=True).start()

    def _one(self, client: socket.socket) -> None:
        with client:
            request = _read_message(client)
            if not request:
                return
            self.seen.append(request)
            request = request.replace(b"keep-alive", b"close")
            with socket.create_connection(("127.0.0.1", self.upstream)) as up:
                up.sendall(request)
                answer = _read_message(up)
            if self.lost == 0 and all(part in request for part in self.lose):
                self.lost += 1
                return  # the gateway acted and answered; the agent never hears it
            client.sendall(answer)

    def close(self) -> None:
        self._server.close()
