"""`devops-agent gateway serve`: the reference AI Command Gateway (issue 17).

It carries out the agent's intents on its own host's engine, with the same registry the agent
has (INFRA_BACKEND docker or swarm, DOCKER_HOST, INFRA_TARGETS), behind GATEWAY_TOKEN, limited
to GATEWAY_OPERATIONS, deduplicated by idempotency key in GATEWAY_DB. With GATEWAY_FORWARD_URL
it also watches its engine's events and forwards the alerts to the agent (gateway/forward.py).
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from devops_agent.config import Settings
from devops_agent.gateway.app import create_app
from devops_agent.gateway.forward import Forwarder, Intents
from devops_agent.gateway.store import IntentStore
from devops_agent.sources.watcher import EngineWatcher
from devops_agent.tools.registry import Registry
from devops_agent.tools.select import build_backend

STARTUP_ERROR = 2


def serve(settings: Settings, host: str, port: int) -> int:
    """Serve the gateway on host:port until stopped; 2 (one line) when it cannot start."""
    if settings.gateway_token is None:
        print(
            "error: invalid setting GATEWAY_TOKEN: required by `gateway serve` "
            "(example: GATEWAY_TOKEN=<a long random string: openssl rand -hex 32>)",
            file=sys.stderr,
        )
        return STARTUP_ERROR
    if settings.infra_backend not in ("docker", "swarm"):
        print(
            f"error: invalid setting INFRA_BACKEND: the gateway carries out intents on docker or "
            f"swarm, not {settings.infra_backend} (example: INFRA_BACKEND=docker)",
            file=sys.stderr,
        )
        return STARTUP_ERROR
    try:
        store = IntentStore(settings.resolved_gateway_db)
    except OSError as exc:
        print(f"error: cannot open GATEWAY_DB: {exc.strerror}", file=sys.stderr)
        return STARTUP_ERROR
    logging.basicConfig(level=settings.log_level, format="%(levelname)s %(name)s: %(message)s")
    registry = Registry(build_backend(settings))
    intents_on = watcher = forwarder = None
    if settings.gateway_forward_url and settings.watch_events:
        if settings.infra_backend == "docker":
            token = settings.webhook_token
            forwarder = Forwarder(
                settings.gateway_forward_url, token.get_secret_value() if token else None
            )
            intents_on = Intents(settings.validate_settle)
            watcher = EngineWatcher(
                settings.docker_host,
                forwarder.accept,
                intents_on.activity,
                settings.crash_loop_window,
            )
        else:
            logging.getLogger("devops_agent.gateway").warning(
                "GATEWAY_FORWARD_URL: the events watcher watches Docker engines "
                "(INFRA_BACKEND=docker), not %s: nothing is forwarded",
                settings.infra_backend,
            )
    app = create_app(
        registry,
        store,
        settings.gateway_token.get_secret_value(),
        settings.gateway_allowlist,
        intents_on=intents_on,
        watcher=watcher,
        forwarder=forwarder,
    )
    try:
        uvicorn.run(app, host=host, port=port, log_level=settings.log_level.lower())
    finally:
        store.close()
    return 0
