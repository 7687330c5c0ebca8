"""The container labels the agent reads: its own, and the ones Docker Compose sets."""

from __future__ import annotations

HEALTH_URL = "devops-agent.health-url"  # an HTTP URL whose 2xx means healthy
DEPENDS_ON = "devops-agent.depends-on"  # comma-separated services it needs
WATCH = "devops-agent.watch"  # "true": the engine's events of this container start incidents

COMPOSE_SERVICE = "com.docker.compose.service"
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_NUMBER = "com.docker.compose.container-number"
COMPOSE_DEPENDS_ON = "com.docker.compose.depends_on"  # "service:condition:restart,..."

# Alert labels that pick one Compose project where a service name exists in several.
PROJECT_ALERT_LABELS = ("project", "compose_project")


def depends_on(labels: dict[str, str]) -> list[str]:
    """The services a container declares it needs, by our label and by Compose's."""
    names = [n.strip() for n in labels.get(DEPENDS_ON, "").split(",")]
    names += [
        item.split(":", 1)[0].strip() for item in labels.get(COMPOSE_DEPENDS_ON, "").split(",")
    ]
    return list(dict.fromkeys(n for n in names if n))
