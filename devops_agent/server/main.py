"""`devops-agent serve`: uvicorn on API_HOST:API_PORT."""

from __future__ import annotations

import logging
import sys

import uvicorn

from devops_agent.config import Settings, SettingsError
from devops_agent.errors import short_error
from devops_agent.memory.storelock import StoreLocked, hold_store
from devops_agent.redact import redact
from devops_agent.server.app import create_app
from devops_agent.server.preflight import startup_problem

log = logging.getLogger("devops_agent")
STARTUP_ERROR = 2  # the exit code of a settings or start-up error (CONTRACT.md)
SQLALCHEMY_TRAILERS = ("[SQL:", "[parameters:", "(Background on this error")


class _NoTraceback(logging.Filter):
    """uvicorn logs the whole traceback of a lifespan that failed (the text Starlette sends with
    `lifespan.startup.failed`): keep its last line, the error itself. The checks of preflight.py
    run first, so this is only for what fails between them and the lifespan (the database
    going away in that moment)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if text.startswith("Traceback"):
            lines = [
                line.strip()
                for line in text.splitlines()
                if line.strip() and not line.lstrip().startswith(SQLALCHEMY_TRAILERS)
            ]
            last = lines[-1] if lines else ""
            record.msg, record.args = f"lifespan failed: {last[:300]}", None
        return True


def _refuse(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return STARTUP_ERROR


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
    problem = startup_problem(settings)
    if problem:
        return _refuse(problem)
    try:
        hold_store(settings.resolved_database_url)
    except StoreLocked as exc:
        return _refuse(f"cannot start: {exc}")
    configure_logging(settings.log_level)
    logging.getLogger("uvicorn.error").addFilter(_NoTraceback())
    try:
        app = create_app(settings)
    except SettingsError as exc:
        return _refuse(str(exc))
    except (OSError, ValueError) as exc:
        return _refuse(f"cannot start: {short_error(exc)}")
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
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits when it cannot bind the port
        return 0 if exc.code in (0, None) else STARTUP_ERROR
    return 0 if server.started else STARTUP_ERROR
