"""Where the infrastructure is, as the settings say it (issue 17): the URL check of every
setting that names an engine or a service, INFRA_TARGETS, the gateway's allowlist, and what a
backend's settings need as a whole. Below config.py, which validates with these."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

from devops_agent.operations import OPERATIONS

DOCKER_SCHEMES = ("unix", "tcp", "ssh", "npipe", "http", "https")
CERT_FILES = ("ca.pem", "cert.pem", "key.pem")
INFRA_EXAMPLES = {
    "gateway_url": "http://10.0.0.5:8700",
    "gateway_token": "<a long random string: openssl rand -hex 32>",
    "gateway_operations": "health_check,get_logs,check_resources,restart_service",
    "gateway_timeout": "60",
    "infra_targets": "local=unix:///var/run/docker.sock,edge=tcp://10.0.0.7:2376",
}


def check_url(value: str, schemes: tuple[str, ...]) -> None:
    """Raise ValueError unless `value` is a URL of one of `schemes` with a host (or, for
    unix://, a path) and a valid port. The message never repeats the value: a webhook URL
    carries its secret in the path."""
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018  (raises ValueError when out of range or not a number)
    except ValueError:
        raise ValueError("is not a URL (bad host or port)") from None
    if parts.scheme not in schemes:
        names = [f"{s}://" for s in schemes]
        raise ValueError(f"must start with {', '.join(names[:-1])} or {names[-1]}")
    if parts.scheme in ("unix", "npipe"):
        if not parts.path:
            raise ValueError("names no socket path")
    elif not parts.hostname:
        raise ValueError("names no host")


def parse_engines(text: str) -> dict[str, str]:
    """Parse INFRA_TARGETS: `name=unix:///path` or `name=tcp://host:port`, comma-separated."""
    found: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, url = (p.strip() for p in item.partition("="))
        if not sep or not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,62}", name):
            raise ValueError(f"entry {item!r} is not name=unix:///path or name=tcp://host:port")
        check_url(url, ("unix", "tcp"))
        if name in found:
            raise ValueError(f"engine {name!r} is named twice")
        found[name] = url
    return found


def parse_operations(text: str) -> list[str]:
    """Parse a comma-separated list of the registry's operations."""
    names = [p.strip() for p in text.split(",") if p.strip()]
    unknown = [n for n in names if n not in OPERATIONS]
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not an operation (known: {', '.join(OPERATIONS)})")
    return names


def cert_dir(cert_path: Path, engine: str) -> Path:
    """An engine's own certificate directory (DOCKER_CERT_PATH/<engine>), else the shared one."""
    own = cert_path / engine
    return own if own.is_dir() else cert_path


def infra_problem(
    backend: str, engines: dict[str, str], cert_path: Path, *, gateway: bool, gateway_url: bool
) -> str | None:
    """What the backend's settings lack as a whole (one line), or None."""
    if backend == "gateway" and not gateway:
        lacking = "GATEWAY_URL" if not gateway_url else "GATEWAY_TOKEN"
        return (
            f"invalid setting {lacking}: required when INFRA_BACKEND=gateway "
            f"(example: {lacking}={INFRA_EXAMPLES[lacking.lower()]})"
        )
    if engines and backend != "docker":
        return (
            f"invalid setting INFRA_TARGETS: several engines work with INFRA_BACKEND=docker, "
            f"not {backend} (example: INFRA_BACKEND=docker)"
        )
    for name, url in engines.items():
        where = cert_dir(cert_path, name)
        absent = [f for f in CERT_FILES if not (where / f).is_file()]
        if url.startswith("tcp://") and absent:
            return (
                f"invalid setting INFRA_TARGETS: engine {name} is tcp:// (TLS) and {where} has no "
                f"{', '.join(absent)} (DOCKER_CERT_PATH, or a subdirectory named {name})"
            )
    return None


def parse_targets(text: str) -> dict[str, str]:
    """Parse `name=url,name=url`."""
    found: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, url = item.partition("=")
        if not sep or not name.strip() or not url.strip().startswith(("http://", "https://")):
            raise ValueError(f"entry {item!r} is not name=http://host:port/path")
        found[name.strip()] = url.strip()
    return found
