"""LangChain tools over the registry's read-only operations, for the LLM's investigation.

The tools are built from the registry's own parameter models (never written twice) and offered
only for operations with `mutating == False`. A `ToolSession` bounds one investigation, in the
spirit of HolmesGPT's safeguards: a budget of calls, repeated identical calls refused, targets
limited to the incident's, and each output capped (logs trimmed to their error lines and tail)
and masked by devops_agent.redact (again: Registry.run masked it first) before the model sees it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from langchain_core.tools import StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ValidationError

from devops_agent.operations import OperationSpec
from devops_agent.redact import redact_data
from devops_agent.tools.registry import OperationResult, Registry

OUTPUT_CAP = 4000  # characters of one tool output (about 1k tokens)
LOG_LINES = 20  # error lines, and tail lines, shown per get_logs call
LINE_CAP = 300  # characters per log line
TRUNCATED = " ...[truncated]"


def cap(text: str, limit: int = OUTPUT_CAP) -> str:
    return text if len(text) <= limit else text[: limit - len(TRUNCATED)] + TRUNCATED


def _lines(lines: Iterable[Any], limit: int = LOG_LINES) -> list[str]:
    return [str(line)[:LINE_CAP] for line in list(lines)[-limit:]]


def _dump(body: dict[str, Any]) -> str:
    return json.dumps(redact_data(body), default=str, ensure_ascii=False)


def render(result: OperationResult) -> str:
    """An operation result as the model sees it: JSON, logs trimmed, capped, secrets masked.

    Log lines are dropped oldest first until the output fits, so it stays valid JSON; other
    data is cut at the cap as a last resort.
    """
    body: dict[str, Any] = {
        "operation": result.operation,
        "target": result.target,
        "ok": result.ok,
        "error": result.error,
        "message": result.message[:LINE_CAP],
    }
    if result.operation != "get_logs":
        return cap(_dump({**body, "data": result.data}))
    body["lines_read"] = result.data.get("lines")
    body["error_lines"] = _lines(result.data.get("error_lines", []))
    body["tail"] = _lines(result.data.get("tail", []))
    text = _dump(body)
    while len(text) > OUTPUT_CAP and (body["error_lines"] or body["tail"]):
        longest = max(("error_lines", "tail"), key=lambda key: len(body[key]))
        body[longest] = body[longest][1:]
        body["trimmed"] = True
        text = _dump(body)
    return cap(text)


@dataclass
class ToolSession:
    """The bounds and the memory of one investigation's tool calls."""

    allowed_targets: frozenset[str]
    budget: int
    quote: Callable[[str], str] = str  # wraps outputs as quoted data (see reasoning/prompts.py)
    reveal: Callable[[str], str] = str  # maps the model's pseudonyms back (REDACT_IDENTIFIERS)
    calls: int = 0
    seen: set[str] = field(default_factory=set)
    used: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    @property
    def spent(self) -> bool:
        return self.calls >= self.budget

    def admit(self, operation: str, params: dict[str, Any]) -> str | None:
        """None when the call may run, otherwise the reason it is refused."""
        target = str(params.get("target", ""))
        key = operation + json.dumps(params, sort_keys=True, default=str)
        if target not in self.allowed_targets:
            allowed = ", ".join(sorted(self.allowed_targets)) or "none"
            why = f"{target!r} is not a target of this incident (allowed: {allowed})"
        elif key in self.seen:
            why = "an identical call was already made; use its result"
        elif self.spent:
            why = f"the budget of {self.budget} tool calls is spent; give your answer now"
        else:
            self.seen.add(key)
            self.calls += 1
            self.used.append(f"{operation}({target})")
            return None
        self.refused.append(f"{operation}({target}): {why}")
        return f"refused: {why}"


def read_only(registry: Registry) -> list[OperationSpec]:
    """The operations the model may call: those that change nothing."""
    return [spec for spec in registry.operations.values() if not spec.mutating]


def _invalid(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"]) or "arguments"
    return f"refused: invalid arguments: {where}: {err['msg']}"


async def _call(registry: Registry, session: ToolSession, operation: str, **params: Any) -> str:
    params = {k: session.reveal(v) if isinstance(v, str) else v for k, v in params.items()}
    why = session.admit(operation, params)
    if why is not None:
        return why
    result = await registry.run(operation, params)
    text = render(result)
    session.outputs.append(text)
    return session.quote(text)


def build_tools(registry: Registry, session: ToolSession) -> list[StructuredTool]:
    """One LangChain tool per read-only operation, bound to the registry and the session."""
    return [
        StructuredTool(
            name=spec.name,
            description=spec.description or spec.name,
            args_schema=spec.params,
            coroutine=partial(_call, registry, session, spec.name),
            handle_validation_error=_invalid,
        )
        for spec in read_only(registry)
    ]


def tool_schemas(registry: Registry) -> list[dict[str, Any]]:
    """The OpenAI tool schemas of the read-only operations (computed once per reasoner)."""
    empty = ToolSession(frozenset(), 0)
    return [convert_to_openai_tool(tool) for tool in build_tools(registry, empty)]
