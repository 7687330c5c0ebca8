"""Settings: one object, read from the environment and `.env`, validated once at start."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from devops_agent import __version__
from devops_agent.dburl import DatabaseUrl
from devops_agent.examples import EXAMPLES
from devops_agent.infra import (
    DOCKER_SCHEMES,
    check_url,
    infra_problem,
    parse_engines,
    parse_operations,
    parse_targets,
)
from devops_agent.operations import Risk

# Optional settings that an empty value leaves unset (`OPENAI_API_KEY=` in a .env is no key).
EMPTY_IS_UNSET = (
    "agent_api_token",
    "webhook_token",
    "openai_api_key",
    "openai_base_url",
    "docker_host",
    "market_predictor_url",
    "notify_webhook_url",
    "prometheus_url",
    "policy_file",
    "audit_key",
    "devops_agent_url",
    "devops_agent_token",
    "gateway_url",
    "gateway_token",
    "otel_exporter_otlp_endpoint",
    "public_url",
    "slack_bot_token",
    "slack_channel",
    "slack_signing_secret",
    "gateway_forward_url",
)
HTTP_URLS = (
    "openai_base_url",
    "market_predictor_url",
    "notify_webhook_url",
    "prometheus_url",
    "devops_agent_url",
    "gateway_url",
    "otel_exporter_otlp_endpoint",
    "public_url",
    "slack_api_url",
    "gateway_forward_url",
)


class Settings(BaseSettings):
    """Every setting of CONTRACT.md, plus a few internal ones with safe defaults."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    environment: Literal["development", "production"] = "development"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    service_name: str = "devops-ai-agent"
    service_version: str = __version__
    api_host: str = "127.0.0.1"
    api_port: int = Field(8001, ge=1, le=65535)
    data_dir: Path = Path("./data")
    database_url: str = ""
    agent_api_token: SecretStr | None = None
    webhook_token: SecretStr | None = None

    reasoner: Literal["auto", "llm", "rules"] = "auto"
    openai_api_key: SecretStr | None = None
    openai_base_url: str | None = None
    llm_model: str = "gpt-4o"
    llm_temperature: float = Field(0.1, ge=0.0, le=2.0)
    llm_max_tokens: int = Field(2000, ge=1)
    llm_timeout: float = Field(60, gt=0)
    fallback_enabled: bool = True
    llm_structured_output: Literal["function_calling", "json_schema"] = "function_calling"
    llm_max_tool_calls: int = Field(8, ge=0, le=40)
    llm_max_retries: int = Field(2, ge=0, le=10)
    llm_breaker_failures: int = Field(5, ge=1)
    llm_breaker_window: float = Field(60, gt=0)
    # Host names, IP and e-mail addresses reach the model as pseudonyms (host-1, ip-2, email-1).
    redact_identifiers: bool = False

    safety_mode: bool = True
    confidence_threshold: float = Field(0.8, ge=0.0, le=1.0)
    auto_approve_max_risk: Risk = "low"
    max_attempts: int = Field(2, ge=1, le=10)
    approval_timeout: int = Field(3600, ge=1)

    infra_backend: Literal["docker", "fake", "gateway", "swarm"] = "docker"
    docker_host: str | None = None
    monitoring_interval: int = Field(30, ge=1)
    target_services: str = ""
    market_predictor_url: str | None = None
    notify_webhook_url: str | None = None
    prometheus_url: str | None = None

    max_concurrent_runs: int = Field(8, ge=1, le=1000)
    # Several replicas on one PostgreSQL: a replica holds a run for this long, renewing it while
    # it works; when it dies, another takes the run over once the lease has run out.
    run_lease_seconds: float = Field(30, gt=0, le=3600)
    # Seconds after a run finished before its checkpoints are deleted (its records stay).
    checkpoint_retention: float = Field(7 * 24 * 3600, gt=0)
    dry_run: bool = False
    policy_file: Path | None = None
    # The operator's remediation workflows (*.yaml), beside the built-in ones.
    workflows_dir: Path | None = None
    max_actions_per_service_per_hour: int = Field(3, ge=0)
    max_actions_per_hour: int = Field(20, ge=0)
    max_targets_per_run: int = Field(3, ge=1)
    max_scale_step: int = Field(2, ge=1)
    breaker_failures: int = Field(3, ge=1)
    breaker_cooldown: int = Field(3600, ge=0)
    audit_key: SecretStr | None = None
    max_replicas: int = Field(10, ge=1, le=100)
    validate_timeout: float = Field(30, gt=0)
    # Seconds a fix must hold (healthy, no crash, no restart) after the first healthy probe
    # before the run ends `resolved`; 0 turns the window off.
    validate_settle: float = Field(30, ge=0, le=86_400)
    # A crash within this many seconds after a fix of it held is a crash loop.
    crash_loop_window: float = Field(300, ge=0)
    # After a fix that held, the agent asks a person before acting on the service again.
    remediation_cooldown: float = Field(600, ge=0)
    # With SAFETY_MODE off: an operation a person approved this many times in a row for one
    # (service, category), each fix holding, then runs by itself for it (memory/ladder.py).
    autonomy_ladder: bool = False
    autonomy_promote_after: int = Field(3, ge=1, le=100)
    # Alertmanager, asked whether a run's alerts still fire once the fix held (recorded only).
    alertmanager_url: str | None = Field(None, pattern=r"^https?://")
    # Seconds a health probe (the agent's, the monitoring loop's) waits for an answer before the
    # service counts as not answering.
    probe_timeout: float = Field(3.0, gt=0, le=60)
    # root_cause's first probe: when this one gets no answer and Docker or Prometheus already saw
    # the service not answering, with no sign of load, it is diagnosed hung without waiting
    # PROBE_TIMEOUT (nodes/hang.py). Equal to PROBE_TIMEOUT: always wait.
    probe_quick_timeout: float = Field(0.5, gt=0, le=60)
    execute_command_allowlist: str = ""
    # Requests per second per client (IP and credential) on the API; 0 turns the limit off.
    rate_limit_per_second: float = Field(100, ge=0)
    rate_limit_burst: int = Field(1000, ge=1)
    # Where the CLI's client commands (`demo`, `approvals`, `approve`, `reject`) reach a running
    # service, and with which token (a user's own: decisions are recorded as that user).
    devops_agent_url: str | None = None
    devops_agent_token: SecretStr | None = None
    # Issue 20: the engine's events (die with a non-zero exit, oom, health_status: unhealthy) of
    # containers labelled devops-agent.watch=true start incidents (INFRA_BACKEND=docker).
    watch_events: bool = True

    # -- issue 17: beyond one Docker host (the gateway, Swarm, several engines) --
    # INFRA_BACKEND=gateway: each operation goes as an intent to the AI Command Gateway here.
    gateway_url: str | None = None
    # The bearer token between the agent and its gateways (both sides read it).
    gateway_token: SecretStr | None = None
    # `devops-agent gateway serve`: the operations this gateway carries out; others are refused.
    gateway_operations: str = "health_check,get_logs,check_resources,restart_service,scale_service"
    # The gateway's idempotency store (SQLite), by default DATA_DIR/gateway.db.
    gateway_db: Path | None = None
    # Seconds the agent waits for one answer of the gateway before it asks again (same key).
    gateway_timeout: float = Field(60, gt=0, le=3600)
    # Several Docker engines, `name=url,name=url` (unix:// or tcp:// with TLS from DOCKER_CERT_PATH).
    infra_targets: str = ""
    # The standard Docker variable: ca.pem, cert.pem and key.pem for tcp:// engines (TLS), or a
    # subdirectory named after the engine of INFRA_TARGETS when that one has its own.
    docker_cert_path: Path | None = None
    # `devops-agent gateway serve`: the agent's webhook (http://agent:8000/webhook/alerts). The
    # gateway watches its own engine's events (WATCH_EVENTS, INFRA_BACKEND=docker) and posts the
    # alerts there, with WEBHOOK_TOKEN as bearer, retrying until the agent takes them.
    gateway_forward_url: str | None = None

    @field_validator("gateway_operations")
    @classmethod
    def _gateway_operations(cls, value: str) -> str:
        parse_operations(value)
        return value

    @field_validator("infra_targets")
    @classmethod
    def _infra_targets(cls, value: str) -> str:
        parse_engines(value)
        return value

    @property
    def engines(self) -> dict[str, str]:
        """INFRA_TARGETS as a mapping of engine name to its URL."""
        return parse_engines(self.infra_targets)

    @property
    def gateway_allowlist(self) -> list[str]:
        return parse_operations(self.gateway_operations)

    @property
    def resolved_gateway_db(self) -> Path:
        return self.gateway_db or self.data_dir / "gateway.db"

    # Issue 15 (people in the loop): the console's session key, and users from a trusted proxy.
    session_key: SecretStr | None = None
    trusted_proxy_auth: bool = False
    trusted_proxies: str = ""

    @field_validator("session_key", mode="before")
    @classmethod
    def _session_key(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        if isinstance(value, str) and len(value.strip()) < 32:
            raise ValueError("is too short: at least 32 characters")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: str) -> str:
        for item in filter(None, (p.strip() for p in value.split(","))):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    @property
    def proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """TRUSTED_PROXIES as networks (a single address is a /32 or /128)."""
        items = filter(None, (p.strip() for p in self.trusted_proxies.split(",")))
        return [ipaddress.ip_network(item, strict=False) for item in items]

    @field_validator(*EMPTY_IS_UNSET, mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator(*HTTP_URLS)
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None:
            check_url(value, ("http", "https"))
        return value

    @field_validator("docker_host")
    @classmethod
    def _docker_host(cls, value: str | None) -> str | None:
        if value is not None:
            check_url(value, DOCKER_SCHEMES)
        return value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("target_services")
    @classmethod
    def _targets_parse(cls, value: str) -> str:
        parse_targets(value)
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url_scheme(cls, value: str) -> str:
        if value and not value.startswith(("sqlite", "postgresql", "postgres://", "memory://")):
            raise ValueError("must start with sqlite+aiosqlite:///, postgresql:// or memory://")
        return value

    def missing_tokens(self, serving: bool) -> list[str]:
        """The tokens ENVIRONMENT=production needs and that are unset: AGENT_API_TOKEN always,
        WEBHOOK_TOKEN for a process that serves the webhook."""
        if self.environment != "production":
            return []
        needed = {"AGENT_API_TOKEN": self.agent_api_token}
        if serving:
            needed["WEBHOOK_TOKEN"] = self.webhook_token
        return [name for name, value in needed.items() if value is None]

    @property
    def on_postgres(self) -> bool:
        return DatabaseUrl(self.resolved_database_url).kind == "postgresql"

    @property
    def resolved_database_url(self) -> str:
        """DATABASE_URL, or the SQLite file under DATA_DIR when unset."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'agent.db').as_posix()}"

    @property
    def targets(self) -> dict[str, str]:
        """TARGET_SERVICES as a mapping, with MARKET_PREDICTOR_URL added."""
        found = parse_targets(self.target_services)
        if self.market_predictor_url:
            found.setdefault("market-predictor", self.market_predictor_url)
        return found

    @property
    def command_allowlist(self) -> list[list[str]]:
        """EXECUTE_COMMAND_ALLOWLIST: `;`-separated argv prefixes, each split on spaces."""
        return [p.split() for p in self.execute_command_allowlist.split(";") if p.strip()]

    def uses_llm(self) -> bool:
        """Whether the reasoner of this configuration is the LLM one."""
        if self.reasoner == "auto":
            return self.openai_api_key is not None
        return self.reasoner == "llm"

    # -- issue 16: traces, Slack approvals, the MCP server ------------------------------------
    # The standard OpenTelemetry variable: a base URL; traces go over OTLP/HTTP to its /v1/traces.
    otel_exporter_otlp_endpoint: str | None = None
    # Where people reach the service, for links in notifications (the console's "Open" button).
    public_url: str | None = None
    slack_bot_token: SecretStr | None = None
    slack_channel: str | None = None
    slack_signing_secret: SecretStr | None = None
    # Slack's Web API; tests point it at a local server that speaks the same methods.
    slack_api_url: str = "https://slack.com/api/"

    @property
    def slack_enabled(self) -> bool:
        """SLACK_BOT_TOKEN and SLACK_CHANNEL: approval requests go to Slack."""
        return self.slack_bot_token is not None and self.slack_channel is not None


class SettingsError(Exception):
    """A setting has a wrong value; the message is one line meant for the operator."""


def describe_error(exc: ValidationError) -> str:
    """One line naming the setting, the problem and an example of a right value."""
    err = exc.errors()[0]
    field = str(err["loc"][0]) if err["loc"] else ""
    message = err["msg"].removeprefix("Value error, ")
    if not field:
        return f"invalid settings: {message}"
    example = EXAMPLES.get(field)
    hint = f" (example: {field.upper()}={example})" if example else ""
    return f"invalid setting {field.upper()}: {message}{hint}"


def requirement_problem(settings: Settings, serving: bool = False) -> str | None:
    """What the settings lack as a whole (one line), or None: the tokens of production, and
    AUDIT_KEY on PostgreSQL, where replicas that each made their own key would break the one
    shared audit chain."""
    missing = settings.missing_tokens(serving)
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        example = EXAMPLES[missing[-1].lower()]
        return (
            f"invalid settings: {' and '.join(missing)} {verb} required when "
            f"ENVIRONMENT=production (example: {missing[-1]}={example})"
        )
    infra = infra_problem(
        settings.infra_backend,
        settings.engines,
        settings.docker_cert_path or Path.home() / ".docker",
        gateway=bool(settings.gateway_url and settings.gateway_token),
        gateway_url=bool(settings.gateway_url),
    )
    if infra:
        return infra
    if settings.on_postgres and settings.audit_key is None:
        return (
            "invalid setting AUDIT_KEY: required when DATABASE_URL is PostgreSQL: every replica "
            "must sign the audit chain with the same key; on an existing deployment set it to "
            f"the content of DATA_DIR/audit-key (example: AUDIT_KEY={EXAMPLES['audit_key']})"
        )
    return None


def load_settings(*, serving: bool = False, **overrides: object) -> Settings:
    """Read and validate the settings; raise SettingsError with one clear line when wrong.
    `serving`: the process serves the webhook (`devops-agent serve`)."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(describe_error(exc)) from None
    problem = requirement_problem(settings, serving)
    if problem:
        raise SettingsError(problem)
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
