"""`devops-agent serve`: uvicorn on API_HOST:API_PORT."""

from __future__ import annotations

import logging

import uvicorn

from devops_agent.config import Settings
from devops_agent.memory.preflight import database_problem
from devops_agent.memory.storelock import StoreLocked, hold_store
from devops_agent.redact import redact
from devops_agent.server.app import create_app

log = logging.getLogger("devops_agent")


class RedactingFilter(logging.Filter):
    """Masks each record after its arguments are formatted in (and its traceback), so a secret
    passed as `%s` is caught too (devops_agent/redact.py). Installed on handlers: a logger's
    filters miss the records that its children propagate."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it itself
            return True
        record.msg, record.args = redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_text = redact(record.exc_text) if record.exc_text else record.exc_text
        record.stack_info = redact(record.stack_info) if record.stack_info else None
        return True


def install_log_redaction(logger: logging.Logger | None = None) -> None:
    """Put a RedactingFilter on every handler of `logger` (default: the root logger), once."""
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


def configure_logging(level: str) -> None:
    """The process's log: one format, every line masked (uvicorn's too, as it propagates)."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_log_redaction()
    # httpx logs every request URL at INFO; a NOTIFY_WEBHOOK_URL carries its secret in the path.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))


def serve(settings: Settings) -> int:
    """Run the service until SIGINT/SIGTERM; the exit code for the CLI."""
    configure_logging(settings.log_level)
    problem = database_problem(settings.resolved_database_url)
    if problem:
        log.error("cannot start: %s", problem)
        return 1
    try:
        hold_store(settings.resolved_database_url)
    except StoreLocked as exc:
        log.error("cannot start: %s", exc)
        return 2
    try:
        app = create_app(settings)
    except (OSError, ValueError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_level=settings.log_level.lower(),
        lifespan="on",
        timeout_graceful_shutdown=5,
        log_config=None,  # keep the root logging configured above
    )
    server = uvicorn.Server(config)
    server.run()
    return 0 if server.started else 1
