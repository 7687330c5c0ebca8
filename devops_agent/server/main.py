"""`devops-agent serve`: uvicorn on API_HOST:API_PORT."""

from __future__ import annotations

import logging

import uvicorn

from devops_agent.config import Settings
from devops_agent.memory.preflight import database_problem
from devops_agent.redact import install_log_redaction
from devops_agent.server.app import create_app

log = logging.getLogger("devops_agent")


def serve(settings: Settings) -> int:
    """Run the service until SIGINT/SIGTERM; the exit code for the CLI."""
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    install_log_redaction()  # every line the process writes, uvicorn's too, is masked
    # httpx logs every request URL at INFO; a NOTIFY_WEBHOOK_URL carries its secret in the path.
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    problem = database_problem(settings.resolved_database_url)
    if problem:
        log.error("cannot start: %s", problem)
        return 1
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
