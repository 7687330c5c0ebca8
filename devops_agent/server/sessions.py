"""Console sessions: a signed cookie (HMAC-SHA256 with SESSION_KEY), and the CSRF token of forms.

The cookie holds a random nonce, the hash of the token the person logged in with (never the
token), and an expiry; it is HttpOnly, SameSite=Strict, scoped to /ui, and Secure over HTTPS.
Every request looks the user up again by that hash, so removing a user (or changing
AGENT_API_TOKEN) ends their sessions. A form's CSRF token is an HMAC of the session's nonce.
SESSION_KEY is generated under DATA_DIR on SQLite; on PostgreSQL it must be set, so that every
replica accepts every session (without it the console refuses to log anyone in).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from devops_agent.config import Settings

log = logging.getLogger(__name__)
COOKIE = "devops_agent_session"
KEY_FILE = "session-key"
MAX_AGE = 12 * 3600  # seconds a login lasts


def load_session_key(settings: Settings) -> bytes | None:
    """SESSION_KEY; on SQLite the key in DATA_DIR/session-key (generated, 0600); else None."""
    if settings.session_key is not None:
        return settings.session_key.get_secret_value().encode()
    if settings.on_postgres:
        log.warning("SESSION_KEY is unset on PostgreSQL: the console at /ui cannot log anyone in")
        return None
    path = Path(settings.data_dir) / KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_text().strip()
        if len(key) < 32:
            raise ValueError(f"{path} is damaged: delete it to generate a new key") from None
        return key.encode()
    key = secrets.token_hex(32)
    with os.fdopen(fd, "w") as handle:
        handle.write(key + "\n")
    log.info("SESSION_KEY is unset: generated a console session key into %s", path)
    return key.encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    nonce: str
    token_hash: str | None  # None: not logged in (a visitor of the login page)
    expires: int


class Sessions:
    """Signs and reads session cookies, and makes and checks CSRF tokens."""

    def __init__(self, key: bytes | None) -> None:
        self.key = key

    @property
    def enabled(self) -> bool:
        return self.key is not None

    def _mac(self, text: str) -> str:
        assert self.key is not None
        return _b64(hmac.new(self.key, text.encode(), hashlib.sha256).digest())

    def new(self, token_hash: str | None) -> tuple[Session, str]:
        """A fresh session (a new nonce: no fixation) and its cookie value."""
        session = Session(secrets.token_urlsafe(16), token_hash, int(time.time()) + MAX_AGE)
        body = _b64(
            json.dumps({"n": session.nonce, "h": token_hash, "e": session.expires}).encode()
        )
        return session, f"{body}.{self._mac('session|' + body)}"

    def read(self, value: str | None) -> Session | None:
        """The session of a cookie value, or None when it is missing, forged or expired."""
        if not self.enabled or not value or len(value) > 4096 or value.count(".") != 1:
            return None
        body, mac = value.split(".")
        if not hmac.compare_digest(mac, self._mac("session|" + body)):
            return None
        try:
            data = json.loads(_unb64(body))
            session = Session(str(data["n"]), data.get("h"), int(data["e"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > time.time() else None

    def csrf(self, nonce: str) -> str:
        return self._mac("csrf|" + nonce)

    def csrf_ok(self, nonce: str, given: str | None) -> bool:
        return bool(given) and self.enabled and hmac.compare_digest(self.csrf(nonce), str(given))


def cookie_header(value: str, secure: bool, max_age: int = MAX_AGE) -> bytes:
    """The Set-Cookie value: HttpOnly, SameSite=Strict, Path=/ui; Secure over HTTPS."""
    parts = [f"{COOKIE}={value}", "Path=/ui", "HttpOnly", "SameSite=Strict", f"Max-Age={max_age}"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts).encode()


def cookie_of(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The session cookie among a request's Cookie headers, if any."""
    for name, value in headers:
        if name != b"cookie":
            continue
        for part in value.decode("latin-1").split(";"):
            key, _, val = part.strip().partition("=")
            if key == COOKIE:
                return val
    return None
