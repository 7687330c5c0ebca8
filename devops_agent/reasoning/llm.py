"""The LLM reasoner: langchain-openai over any OpenAI-compatible endpoint.

diagnose: the model reads the evidence root_cause gathered (as quoted data) and may call the
read-only operations as tools, within LLM_MAX_TOOL_CALLS; it answers with a DiagnosisAnswer whose
confidence is then bounded by the evidence (confidence.py). plan: one structured answer, checked
against the registry (validation.py). Answers come through a tool call (LLM_STRUCTURED_OUTPUT=
function_calling) or a JSON-schema response format (json_schema), since local servers differ.

Every failure is an LLMError with a stable kind (errors.py); transient ones (429, 5xx, 408/409,
connection) are retried with bounded exponential backoff that honours Retry-After, timeouts are
not (the rules reasoner answers at once instead). A circuit breaker stops calling the model after
LLM_BREAKER_FAILURES failed steps within LLM_BREAKER_WINDOW seconds. Each step appends one record
to `case.calls` (records.py), failed or not.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from time import perf_counter
from typing import Any, Literal, TypeVar

import openai
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.messages.tool import ToolCall
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_openai import ChatOpenAI

from devops_agent import telemetry
from devops_agent.config import Settings
from devops_agent.reasoning import prompts, validation
from devops_agent.reasoning.answers import DIAGNOSIS, PLAN, AnswerSpec, DiagnosisAnswer, PlanAnswer
from devops_agent.reasoning.base import Investigation
from devops_agent.reasoning.breaker import CircuitBreaker
from devops_agent.reasoning.confidence import Corpus, calibrate
from devops_agent.reasoning.errors import LLMError, classify
from devops_agent.reasoning.identifiers import Pseudonyms, pseudonyms_for
from devops_agent.reasoning.records import CallRecord
from devops_agent.state import Diagnosis, Plan
from devops_agent.tools.langchain import ToolSession, build_tools, tool_schemas
from devops_agent.tools.registry import Registry
from devops_agent.workflows import Catalog

T = TypeVar("T")
Method = Literal["function_calling", "json_schema"]
Model = Runnable[LanguageModelInput, BaseMessage]
STEP_TIMEOUT_FACTOR = 3  # a whole step (several model calls and tools) may take 3 x LLM_TIMEOUT
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")


def chat_model(settings: Settings, *, streaming: bool = False) -> ChatOpenAI:
    """ChatOpenAI from the settings; retries are ours (max_retries=0) so they can be counted.

    Each model gets its own HTTP client: langchain-openai's default one is cached per process
    and breaks when used from another event loop than the one that opened its connections.
    """
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else "unset"
    return ChatOpenAI(
        model=settings.llm_model,
        api_key=key,
        base_url=settings.openai_base_url,
        temperature=settings.llm_temperature,
        max_tokens=settings.llm_max_tokens,
        timeout=settings.llm_timeout,
        max_retries=0,
        streaming=streaming,
        stream_usage=True,
        use_responses_api=False,  # Chat Completions: what every compatible server speaks
        http_async_client=openai.DefaultAsyncHttpxClient(),
    )


def answer_of(message: AIMessage, spec: AnswerSpec) -> dict[str, Any] | None:
    """The answer's raw fields: from the answer tool call, else from JSON in the text."""
    for call in message.tool_calls:
        if call["name"] == spec.tool_name:
            return dict(call["args"])
    for bad in message.invalid_tool_calls:
        if bad.get("name") == spec.tool_name:
            raise LLMError("malformed", f"the arguments of {spec.tool_name} are not valid JSON")
    text = _FENCE.sub("", message.text.strip())
    if not text.startswith("{"):
        return None
    try:
        found = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LLMError("malformed", f"the answer is not valid JSON: {exc}") from exc
    if not isinstance(found, dict):
        return None
    if found.get("name") == spec.tool_name and isinstance(found.get("arguments"), dict):
        return dict(found["arguments"])  # a tool call written out as text (some local models)
    return found


class LLMReasoner:
    """Diagnosis and planning by a chat model, with the registry's read-only tools."""

    name = "llm"

    def __init__(
        self,
        model: BaseChatModel,
        registry: Registry,
        *,
        method: Method = "function_calling",
        max_tool_calls: int = 8,
        max_retries: int = 2,
        breaker: CircuitBreaker | None = None,
        step_timeout: float = 180.0,
        command_allowlist: Sequence[Sequence[str]] = (),
        backoff_base: float = 0.5,
        backoff_cap: float = 8.0,
        identifiers: bool = False,
        catalog: Catalog | None = None,
    ) -> None:
        self.model = model
        self.registry = registry
        self.method = method
        self.max_tool_calls = max_tool_calls
        self.max_retries = max_retries
        self.breaker = breaker or CircuitBreaker(5, 60.0)
        self.step_timeout = step_timeout
        self.command_allowlist = [list(p) for p in command_allowlist]
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.identifiers = identifiers
        self.catalog = catalog
        # Everything that does not depend on the incident is prepared once.
        schemas = tool_schemas(registry) if max_tool_calls else []
        self.tool_names = [s["function"]["name"] for s in schemas]
        self.operations = prompts.operations_text(registry.operations.values())
        if method == "function_calling":
            self._investigate: Model = model.bind_tools([*schemas, DIAGNOSIS.tool])
            self._diagnose_final: Model = model.bind_tools(
                [*schemas, DIAGNOSIS.tool], tool_choice=DIAGNOSIS.tool_name
            )
            self._plan_final: Model = model.bind_tools([PLAN.tool], tool_choice=PLAN.tool_name)
        else:
            self._investigate = model.bind_tools(schemas) if schemas else model
            self._diagnose_final = model.bind(response_format=DIAGNOSIS.response_format)
            self._plan_final = model.bind(response_format=PLAN.response_format)

    @classmethod
    def from_settings(
        cls, settings: Settings, registry: Registry, *, streaming: bool = False, **overrides: Any
    ) -> LLMReasoner:
        options: dict[str, Any] = {
            "method": settings.llm_structured_output,
            "max_tool_calls": settings.llm_max_tool_calls,
            "max_retries": settings.llm_max_retries,
            "breaker": CircuitBreaker(settings.llm_breaker_failures, settings.llm_breaker_window),
            "step_timeout": settings.llm_timeout * STEP_TIMEOUT_FACTOR,
            "command_allowlist": settings.command_allowlist,
            "identifiers": settings.redact_identifiers,
            **overrides,
        }
        return cls(chat_model(settings, streaming=streaming), registry, **options)

    # -- the Reasoner protocol ------------------------------------------------------------------

    async def diagnose(self, case: Investigation) -> Diagnosis:
        return await self._step(case, "diagnose", partial(self._diagnose, case))

    async def plan(self, case: Investigation, diagnosis: Diagnosis) -> Plan:
        return await self._step(case, "plan", partial(self._plan, case, diagnosis))

    # -- one step: breaker, deadline, record ----------------------------------------------------

    async def _step(
        self, case: Investigation, step: str, work: Callable[[CallRecord], Awaitable[T]]
    ) -> T:
        record = CallRecord(reasoner=self.name, step=step)
        started = perf_counter()
        try:
            if case.target is None:
                raise LLMError("no_target", "the incident has no resolved target to investigate")
            if not self.breaker.allow():
                raise LLMError("circuit_open", self.breaker.describe())
            try:
                async with asyncio.timeout(self.step_timeout):
                    result = await work(record)
            except TimeoutError as exc:
                raise LLMError(
                    "timeout", f"the {step} step took over {self.step_timeout:g}s"
                ) from exc
            except LLMError:
                raise
            except Exception as exc:
                raise classify(exc) from exc
            self.breaker.record_success()
            return result
        except LLMError as exc:
            record.error = str(exc)
            record.rejected += exc.rejected
            if exc.kind not in ("circuit_open", "no_target"):
                self.breaker.record_failure()
            raise
        finally:
            record.latency_ms = (perf_counter() - started) * 1000
            case.calls.append(record.as_dict())

    def _names(self, case: Investigation) -> Pseudonyms | None:
        return pseudonyms_for(case) if self.identifiers else None

    async def _ask(
        self,
        model: Model,
        messages: list[BaseMessage],
        record: CallRecord,
        names: Pseudonyms | None = None,
    ) -> AIMessage:
        """One model request, retried on transient errors within LLM_MAX_RETRIES."""
        attempt = 0
        outgoing = prompts.outgoing(messages, names)
        while True:
            started = perf_counter()
            try:
                with telemetry.span(
                    "llm request", model=getattr(self.model, "model_name", None), attempt=attempt
                ) as sp:
                    try:
                        message = await model.ainvoke(outgoing)
                    except Exception as exc:
                        telemetry.failed(sp, type(exc).__name__)
                        raise
                    used = getattr(message, "usage_metadata", None) or {}
                    telemetry.annotate(
                        sp,
                        {
                            "input_tokens": int(used.get("input_tokens", 0)),
                            "output_tokens": int(used.get("output_tokens", 0)),
                        },
                    )
            except Exception as exc:
                record.model_ms += (perf_counter() - started) * 1000
                err = classify(exc)
                wait = self._delay(attempt, err.retry_after)
                if not err.retryable or attempt >= self.max_retries or wait is None:
                    raise err from exc
                attempt += 1
                record.retries += 1
                await asyncio.sleep(wait)
                continue
            record.model_ms += (perf_counter() - started) * 1000
            record.model_calls += 1
            if not isinstance(message, AIMessage):
                raise LLMError("malformed", f"the model returned a {type(message).__name__}")
            usage: dict[str, Any] = dict(message.usage_metadata or {})
            record.input_tokens += int(usage.get("input_tokens", 0))
            record.output_tokens += int(usage.get("output_tokens", 0))
            return message

    def _delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds before the next try, or None when the server asks for longer than we wait."""
        if retry_after is not None:
            return retry_after if retry_after <= self.backoff_cap else None
        return min(self.backoff_cap, self.backoff_base * 2**attempt) * random.uniform(0.75, 1.0)

    # -- diagnose ------------------------------------------------------------------------------

    async def _diagnose(self, case: Investigation, record: CallRecord) -> Diagnosis:
        nonce = prompts.new_nonce()
        targets = validation.allowed_targets(case)
        names = self._names(case)
        session = ToolSession(
            frozenset(targets),
            self.max_tool_calls,
            quote=partial(prompts.quote, nonce),
            reveal=names.reveal if names else str,
        )
        tools: dict[str, BaseTool] = (
            {t.name: t for t in build_tools(self.registry, session)} if self.tool_names else {}
        )
        system, user = prompts.diagnose_messages(
            case,
            nonce,
            tool_names=self.tool_names,
            targets=targets,
            budget=self.max_tool_calls,
            spec=DIAGNOSIS,
            method=self.method,
        )
        messages: list[BaseMessage] = [SystemMessage(system), HumanMessage(user)]
        model = self._investigate if tools else self._diagnose_final
        raw: dict[str, Any] | None = None
        try:
            for _ in range(self.max_tool_calls + 1):
                message = await self._ask(model, messages, record, names)
                messages.append(message)
                raw = answer_of(message, DIAGNOSIS)
                if raw is not None or not (message.tool_calls or message.invalid_tool_calls):
                    break
                messages += await self._dispatch(tools, message, session)
                if session.spent:
                    model = self._diagnose_final
            if raw is None:
                if isinstance(messages[-1], AIMessage):
                    messages.append(HumanMessage(prompts.ANSWER_NOW))
                final = await self._ask(self._diagnose_final, messages, record, names)
                raw = answer_of(final, DIAGNOSIS)
        finally:
            record.tool_calls, record.tools = session.calls, list(session.used)
            record.rejected += session.refused
        if raw is None:
            raise LLMError("malformed", "the model gave no diagnosis")
        answer, reasons = validation.parse_answer(DiagnosisAnswer, self._reveal(raw, names))
        reasons += validation.check_diagnosis(answer, case) if answer else []
        if answer is None or reasons:
            raise LLMError("invalid", "the diagnosis was rejected", rejected=reasons)
        calibrated = calibrate(answer, case, Corpus(case, session.outputs))
        record.confidence = {
            "model": answer.confidence,
            "final": calibrated.confidence,
            "notes": calibrated.notes,
        }
        return Diagnosis(
            category=answer.category,
            root_cause=answer.root_cause,
            confidence=calibrated.confidence,
            evidence=calibrated.evidence,
            reasoner=self.name,
        )

    async def _dispatch(
        self, tools: dict[str, BaseTool], message: AIMessage, session: ToolSession
    ) -> list[ToolMessage]:
        """Run the tool calls of one model turn (concurrently); refuse what is not offered."""

        async def one(call: ToolCall) -> ToolMessage:
            tool = tools.get(call["name"])
            if tool is None:
                session.refused.append(f"{call['name']}: not a read-only tool of the registry")
                return ToolMessage(
                    f"refused: {call['name']!r} is not available here; read-only tools: "
                    + ", ".join(tools),
                    tool_call_id=call["id"] or "",
                    status="error",
                )
            reply = await tool.ainvoke(call)
            return (
                reply
                if isinstance(reply, ToolMessage)
                else ToolMessage(str(reply), tool_call_id=call["id"] or "")
            )

        replies = list(await asyncio.gather(*(one(c) for c in message.tool_calls)))
        for bad in message.invalid_tool_calls:
            session.refused.append(f"{bad.get('name')}: arguments are not valid JSON")
            if bad.get("id"):
                replies.append(
                    ToolMessage(
                        "refused: the arguments are not valid JSON",
                        tool_call_id=str(bad["id"]),
                        status="error",
                    )
                )
        return replies

    @staticmethod
    def _reveal(raw: dict[str, Any], names: Pseudonyms | None) -> dict[str, Any]:
        """The answer with the real names: what validation checks and the plan acts on."""
        return dict(names.reveal_data(raw)) if names else raw

    # -- plan ----------------------------------------------------------------------------------

    async def _plan(self, case: Investigation, diagnosis: Diagnosis, record: CallRecord) -> Plan:
        nonce = prompts.new_nonce()
        system, user = prompts.plan_messages(
            case,
            diagnosis,
            nonce,
            operations=self.operations,
            targets=validation.allowed_targets(case),
            spec=PLAN,
            method=self.method,
            catalog=self.catalog,
        )
        names = self._names(case)
        message = await self._ask(
            self._plan_final, [SystemMessage(system), HumanMessage(user)], record, names
        )
        raw = answer_of(message, PLAN)
        if raw is None:
            raise LLMError("malformed", "the model gave no plan")
        answer, reasons = validation.parse_answer(PlanAnswer, self._reveal(raw, names))
        if answer is None:
            raise LLMError("invalid", "the plan was rejected", rejected=reasons)
        made, reasons = validation.check_plan(
            answer, case, diagnosis, self.registry, self.command_allowlist, self.catalog
        )
        if made is None:
            raise LLMError("invalid", "the plan was rejected", rejected=reasons)
        record.confidence = {"model": answer.confidence, "final": made.confidence}
        return made
