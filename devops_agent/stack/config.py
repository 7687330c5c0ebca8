"""The stack's configuration: what runs, on which ports, and the configs rendered for it (the
alert rules of deploy/ with demo intervals, Alertmanager's route to the agent, file_sd
targets that Prometheus watches)."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROMETHEUS_BIN = "prometheus"
ALERTMANAGER_BIN = "prometheus-alertmanager"
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
STATE_FILE = "stack.json"


class StackError(Exception):
    """The stack could not be started or stopped; the message is meant for the operator."""


@dataclass(frozen=True)
class Intervals:
    """How fast the stack notices: the demo defaults, or anything a user passes."""

    scrape: str = "2s"
    scrape_timeout: str = "1500ms"
    evaluation: str = "2s"
    rule_for: str = "0s"
    group_wait: str = "1s"
    group_interval: str = "2s"
    repeat: str = "1h"


@dataclass
class StackSpec:
    """What to run and where. `agent_url` is where Alertmanager sends the webhook."""

    directory: Path
    agent_url: str = "http://127.0.0.1:8001"
    webhook_token: str | None = None
    agent_api_token: str | None = None  # to scrape the agent's /metrics; None: not scraped
    prometheus_port: int = 9090
    alertmanager_port: int = 9093
    rules_file: Path = RULES
    intervals: Intervals = field(default_factory=Intervals)

    @property
    def prometheus_url(self) -> str:
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://127.0.0.1:{self.alertmanager_port}"


# -- configs ------------------------------------------------------------------------------


def _secret(path: Path, value: str) -> Path:
    """Write a credential file readable only by us (Prometheus and Alertmanager read it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return path


def demo_rules(rules_file: Path, rule_for: str) -> dict[str, Any]:
    """The users' alert rules with every `for:` replaced by the demo value."""
    try:
        rules: dict[str, Any] = yaml.safe_load(rules_file.read_text())
    except OSError as exc:
        raise StackError(f"cannot read the alert rules {rules_file}: {exc.strerror}") from None
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            if "alert" in rule:
                rule["for"] = rule_for
    return rules


def prometheus_config(spec: StackSpec) -> dict[str, Any]:
    i = spec.intervals
    scrapes: list[dict[str, Any]] = [
        {
            "job_name": "services",
            "scrape_timeout": i.scrape_timeout,
            "file_sd_configs": [{"files": ["targets/*.json"], "refresh_interval": "2s"}],
        }
    ]
    if spec.agent_api_token:
        address = spec.agent_url.split("://", 1)[-1].rstrip("/")
        scrapes.append(
            {
                "job_name": "devops-agent",
                "scrape_timeout": i.scrape_timeout,
                "authorization": {"credentials_file": str(spec.directory / "agent-api-token")},
                "static_configs": [{"targets": [address], "labels": {"service": "devops-agent"}}],
            }
        )
    return {
        "global": {"scrape_interval": i.scrape, "evaluation_interval": i.evaluation},
        "rule_files": ["alerts.yml"],
        "alerting": {
            "alertmanagers": [
                {"static_configs": [{"targets": [f"127.0.0.1:{spec.alertmanager_port}"]}]}
            ]
        },
        "scrape_configs": scrapes,
    }


def alertmanager_config(spec: StackSpec) -> dict[str, Any]:
    i = spec.intervals
    webhook: dict[str, Any] = {
        "url": spec.agent_url.rstrip("/") + "/webhook/alerts",
        "send_resolved": True,
        "max_alerts": 100,
    }
    if spec.webhook_token:
        credentials = str(spec.directory / "webhook-token")
        webhook["http_config"] = {"authorization": {"credentials_file": credentials}}
    return {
        "route": {
            "receiver": "devops-agent",
            "group_by": ["alertname", "service"],
            "group_wait": i.group_wait,
            "group_interval": i.group_interval,
            "repeat_interval": i.repeat,
            "routes": [{"receiver": "people", "matchers": ['component="devops-agent"']}],
        },
        "receivers": [{"name": "devops-agent", "webhook_configs": [webhook]}, {"name": "people"}],
    }


def render(spec: StackSpec) -> None:
    """Write every config file of the stack into `spec.directory`."""
    d = spec.directory
    (d / "targets").mkdir(parents=True, exist_ok=True)
    if spec.webhook_token:
        _secret(d / "webhook-token", spec.webhook_token)
    if spec.agent_api_token:
        _secret(d / "agent-api-token", spec.agent_api_token)
    files = {
        "alerts.yml": demo_rules(spec.rules_file, spec.intervals.rule_for),
        "prometheus.yml": prometheus_config(spec),
        "alertmanager.yml": alertmanager_config(spec),
    }
    for name, content in files.items():
        (d / name).write_text(yaml.safe_dump(content, sort_keys=False))


def add_target(directory: Path, service: str, address: str, metrics_path: str = "/metrics") -> Path:
    """Scrape `address` (host:port) as `service`; Prometheus picks the file up by itself."""
    path = directory / "targets" / f"{service}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = [
        {"targets": [address], "labels": {"service": service, "__metrics_path__": metrics_path}}
    ]
    tmp = path.with_suffix(".tmp")  # written whole, then renamed: never read half-written
    tmp.write_text(json.dumps(entry))
    tmp.replace(path)
    return path


def remove_target(directory: Path, service: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        (directory / "targets" / f"{service}.json").unlink()


# -- processes ----------------------------------------------------------------------------
