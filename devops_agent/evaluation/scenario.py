"""Scenarios as data: one YAML file each, read by a strict loader.

A scenario names its containers (roles), the fault injected into them, what must be visible
before the alert goes out, the alerts as Alertmanager would send them, what a right answer is
(outcome, category, acceptable and forbidden actions), the recovery check and how long a fix
must hold. Strings may say `${role}` (the name alerts use for that role's service),
`${role.container}` and `${role.port}`; they are filled in when a case is set up.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

BUILTIN_DIR = Path(__file__).resolve().parent / "scenarios"
CATEGORIES = (
    "crash",
    "crash_loop",
    "hang",
    "memory_exhaustion",
    "cpu_saturation",
    "disk_full",
    "config_error",
    "dependency_failure",
    "overload",
    "no_fault",
    "unknown",
)
Category = Literal[
    "crash",
    "crash_loop",
    "hang",
    "memory_exhaustion",
    "cpu_saturation",
    "disk_full",
    "config_error",
    "dependency_failure",
    "overload",
    "no_fault",
    "unknown",
]
Outcome = Literal["mitigated", "escalated", "no_action"]
ACTION_KINDS = ("restart", "create", "remove", "stop", "pause", "exec", "update")
RULE_KINDS = (*ACTION_KINDS, "scale", "any")
TOKEN = re.compile(r"\$\{([a-z][a-z0-9_-]*)(?:\.(container|port))?\}")
ID = r"^[a-z0-9][a-z0-9-]*$"
ROLE = r"^[a-z][a-z0-9-]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ContainerSpec(Strict):
    """One container of the target's set-up."""

    workload: Literal["web", "db", "batch", "queue", "slow", "journal"] = "web"
    env: dict[str, str | None] = Field(default_factory=dict)  # None removes a variable
    compose: bool = False  # labelled as a Compose service (scalable); alerts name the service
    depends_on: list[str] = Field(default_factory=list)  # roles: devops-agent.depends-on
    upstream: str | None = None  # a role it calls: UPSTREAM_NAME / UPSTREAM_PORT
    upstream_check: Literal["tcp", "http"] = "tcp"  # http: the upstream's health must be 200
    health_delay: float | None = Field(None, ge=0, le=10)
    memory: str | None = None
    cpus: float | None = Field(None, gt=0)
    tmpfs: dict[str, str] = Field(default_factory=dict)
    healthcheck: bool = True  # Docker's HEALTHCHECK on the health CGI
    restart_policy: str | None = Field(
        None, pattern=r"^(no|always|unless-stopped|on-failure(:\d+)?)$"
    )
    ready: Literal["healthy", "started"] = "healthy"  # what set-up waits for
    healthy: bool = False  # not part of the fault: any mutation on it is unsafe


class FlagStep(Strict):
    role: str
    flag: Literal["crash", "oom", "hang", "degraded", "crash-at-start", "relapse"]


class LogStep(Strict):
    role: str
    lines: list[str] = Field(min_length=1)
    stream: Literal["stdout", "stderr"] = "stdout"


class RedeployStep(Strict):
    role: str
    env: dict[str, str | None]


class FaultStep(Strict):
    """Exactly one of: set a flag, pause, stop, write log lines, redeploy with other env."""

    flag: FlagStep | None = None
    pause: str | None = None
    stop: str | None = None
    log: LogStep | None = None
    redeploy: RedeployStep | None = None

    @model_validator(mode="after")
    def _one(self) -> FaultStep:
        given = [k for k in ("flag", "pause", "stop", "log", "redeploy") if getattr(self, k)]
        if len(given) != 1:
            raise ValueError("a fault step has exactly one of flag, pause, stop, log, redeploy")
        return self

    @property
    def role(self) -> str:
        for step in (self.flag, self.log, self.redeploy):
            if step is not None:
                return step.role
        return str(self.pause or self.stop)


class Condition(Strict):
    """Something to see on a role: its state, its HTTP answer, Docker's health, a log line."""

    role: str
    state: Literal["running", "exited", "paused"] | None = None
    http: int | Literal["none"] | None = None  # a status code, or `none`: no answer
    within_ms: float | None = Field(None, gt=0)  # with http: answered within this time
    docker_health: Literal["healthy", "unhealthy"] | None = None
    log: str | None = None
    restarts: int | None = Field(None, ge=1)  # Docker's RestartCount at least
    throttled_below: float | None = Field(None, gt=0, le=1)  # CPU throttling ratio

    @model_validator(mode="after")
    def _something(self) -> Condition:
        keys = ("state", "http", "docker_health", "log", "restarts", "throttled_below")
        if not any(getattr(self, k) is not None for k in keys):
            raise ValueError(f"a condition needs one of {', '.join(keys)}")
        if self.within_ms is not None and self.http is None:
            raise ValueError("within_ms goes with http")
        return self


class AlertSpec(Strict):
    alertname: str
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class Expected(Strict):
    outcome: Outcome
    category: Category | list[Category]
    acceptable: list[str] = Field(default_factory=list)  # "<kind> <role>"
    forbidden: list[str] = Field(default_factory=list)

    @property
    def categories(self) -> list[str]:
        return [self.category] if isinstance(self.category, str) else list(self.category)


class Scenario(Strict):
    id: str = Field(pattern=ID)
    title: str
    why: str = ""  # what the scenario tests, for the report
    tags: list[str] = Field(default_factory=list)
    quick: bool = False  # part of `--quick`
    containers: dict[str, ContainerSpec] = Field(default_factory=dict)
    fault: list[FaultStep] = Field(default_factory=list)
    visible: list[Condition] = Field(default_factory=list)
    visible_within: float = Field(30, gt=0, le=300)
    alerts: list[AlertSpec] = Field(min_length=1)
    expected: Expected
    recovery: list[Condition] = Field(min_length=1)
    hold: float = Field(10, ge=0, le=600)  # seconds the recovery must hold
    act_within: float = Field(30, gt=0, le=600)  # what a contender is given to act
    deadline: float = Field(120, gt=0, le=1800)  # the agent's runs must end within this

    @property
    def category(self) -> str:
        return self.expected.categories[0]

    @model_validator(mode="after")
    def _roles_exist(self) -> Scenario:
        roles = set(self.containers)
        for role in roles:
            if not re.match(ROLE, role):
                raise ValueError(f"role {role!r} must be lowercase letters, digits and dashes")
        used: list[tuple[str, str]] = []
        for name, spec in self.containers.items():
            used += [(f"containers.{name}.depends_on", r) for r in spec.depends_on]
            if spec.upstream:
                used.append((f"containers.{name}.upstream", spec.upstream))
        used += [(f"fault[{i}]", s.role) for i, s in enumerate(self.fault)]
        used += [(f"visible[{i}].role", c.role) for i, c in enumerate(self.visible)]
        used += [(f"recovery[{i}].role", c.role) for i, c in enumerate(self.recovery)]
        for where, rule in (
            *((f"expected.acceptable[{i}]", r) for i, r in enumerate(self.expected.acceptable)),
            *((f"expected.forbidden[{i}]", r) for i, r in enumerate(self.expected.forbidden)),
        ):
            kind, _, role = rule.partition(" ")
            if kind not in RULE_KINDS or not role:
                raise ValueError(f"{where}: {rule!r} is not '<{'|'.join(RULE_KINDS)}> <role>'")
            if role != "*":
                used.append((where, role))
        for where, role in used:
            if role not in roles:
                raise ValueError(f"{where}: no container role named {role!r}")
        return self


class ScenarioError(Exception):
    """A scenario file is wrong; the message names the file and the field."""


def load_file(path: Path) -> Scenario:
    """Read one scenario; unknown keys and wrong values are refused with the file and field."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: a scenario is a mapping of fields")
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = "unknown field"
        raise ScenarioError(f"{path}: {where}: {message}") from None
    if scenario.id != path.stem:
        raise ScenarioError(f"{path}: id: {scenario.id!r} must be the file's name ({path.stem!r})")
    return scenario


def load_dir(directory: Path | None = None) -> list[Scenario]:
    """Every `*.yaml` of a directory (the built-in scenarios by default), sorted by id."""
    directory = directory or BUILTIN_DIR
    if not directory.is_dir():
        raise ScenarioError(f"{directory}: not a directory of scenarios")
    found = [load_file(p) for p in sorted(directory.glob("*.yaml"))]
    if not found:
        raise ScenarioError(f"{directory}: no *.yaml scenario in it")
    return found


def select(scenarios: list[Scenario], only: list[str] | None, quick: bool) -> list[Scenario]:
    """The scenarios asked for: `--only` ids (each must exist), else the quick subset, else all."""
    if only:
        known = {s.id: s for s in scenarios}
        missing = [i for i in only if i not in known]
        if missing:
            raise ScenarioError(
                f"--only: no scenario named {', '.join(missing)} (known: {', '.join(known)})"
            )
        return [known[i] for i in only]
    if quick:
        return [s for s in scenarios if s.quick]
    return scenarios
