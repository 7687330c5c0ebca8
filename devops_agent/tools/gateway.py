"""The gateway backend (INFRA_BACKEND=gateway): every operation is an intent sent to an AI
Command Gateway (GATEWAY_URL), which carries it out on its own host and answers with the
registry's typed result.

`POST /intents` carries the operation, its target and parameters, what is intended and why,
the incident's context, and an idempotency key: the ledger key of the step (devops_agent.intent),
or a fresh one for a read outside a step. An answer lost on the way (a timeout, a reset, a 5xx)
is asked for again with the same key; the gateway answers a repeated key with its first result
and never acts twice. A gateway that does not answer is evidence (`unreachable`), not a fault
of the service; a mutating intent that may have arrived before the line went quiet is reported
`in_flight`, for the execute node to reconcile (the gateway knows the key).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
from pydantic import BaseModel, ValidationError

from devops_agent import intent
from devops_agent.operations import OPERATIONS
from devops_agent.state import Ambiguity, Target, Unreachable
from devops_agent.tools.registry import ErrorKind, OperationResult, Reconciliation

ATTEMPTS = 3  # tries of one intent (the same key each time)
BACKOFF = 0.5  # seconds before the second try, doubled after


class GatewayError(Exception):
    """No usable answer: `sent` when the request may have reached the gateway."""

    def __init__(self, message: str, *, sent: bool, refused: bool = False):
        super().__init__(message)
        self.sent = sent
        self.refused = refused

    @property
    def reason(self) -> str:
        """Its reason code: the gateway could not be used for this request (it never reached
        the engine), whether it did not answer or refused the request or the credentials."""
        return "backend_unreachable"


class GatewayBackend:
    """Operations as intents to one AI Command Gateway over HTTP."""

    name = "gateway"

    def __init__(
        self,
        url: str,
        token: str,
        timeout: float = 60.0,
        attempts: int = ATTEMPTS,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.attempts = attempts
        self._headers = {"Authorization": f"Bearer {token}"}
        self._transport = transport

    # -- plumbing ---------------------------------------------------------------------------

    async def _post(self, path: str, body: dict[str, Any] | None) -> dict[str, Any]:
        """POST (GET when `body` is None) with retries on a lost answer; the JSON answer."""
        sent = False
        last = ""
        for attempt in range(self.attempts):
            if attempt:
                await asyncio.sleep(BACKOFF * 2 ** (attempt - 1))
            try:
                async with httpx.AsyncClient(
                    timeout=self.timeout, trust_env=False, transport=self._transport
                ) as client:
                    if body is None:
                        response = await client.get(self.url + path, headers=self._headers)
                    else:
                        response = await client.post(
                            self.url + path, json=body, headers=self._headers
                        )
            except httpx.ConnectError as exc:
                last = f"cannot connect ({type(exc).__name__})"
                continue
            except httpx.HTTPError as exc:  # sent, and the answer was lost on the way
                sent = True
                last = f"no answer ({type(exc).__name__})"
                continue
            if response.status_code in (401, 403):
                raise GatewayError(
                    f"the gateway at {self.url} refused the agent's credentials "
                    f"(HTTP {response.status_code}): GATEWAY_TOKEN must be the gateway's",
                    sent=False,
                    refused=True,
                )
            if response.status_code >= 500:
                sent = True
                last = f"HTTP {response.status_code}"
                continue
            if response.status_code >= 400:
                raise GatewayError(
                    f"the gateway refused the request (HTTP {response.status_code}): "
                    f"{response.text[:200]}",
                    sent=False,
                    refused=True,
                )
            try:
                answer = response.json()
            except ValueError:
                sent, last = True, "an answer that is not JSON"
                continue
            if isinstance(answer, dict):
                return answer
            sent, last = True, "an answer that is not a JSON object"
        raise GatewayError(
            f"gateway unreachable at {self.url}: {last} after {self.attempts} tries", sent=sent
        )

    @staticmethod
    def _params(params: BaseModel) -> dict[str, Any]:
        return params.model_dump(mode="json", exclude_none=True)

    # -- the Backend protocol ---------------------------------------------------------------

    async def ping(self) -> OperationResult:
        try:
            answer = await self._post("/health", None)
        except GatewayError as exc:
            kind: ErrorKind = "refused" if exc.refused else "unreachable"
            return OperationResult.failure("ping", "", kind, str(exc))
        engine = answer.get("engine") or {}
        ok = bool(engine.get("ok"))
        message = f"gateway {self.url}: {engine.get('message', '')}"
        return OperationResult(
            operation="ping",
            target="",
            ok=ok,
            error=None if ok else "unreachable",
            message=message,
            data={"gateway": self.url, "backend": answer.get("backend")},
        )

    async def resolve(
        self, candidates: list[str], project: str | None = None
    ) -> Target | Ambiguity | Unreachable | None:
        try:
            answer = await self._post("/resolve", {"candidates": candidates, "project": project})
        except GatewayError as exc:
            return Unreachable(message=str(exc))
        try:
            if answer.get("target"):
                return Target.model_validate(answer["target"])
            if answer.get("ambiguity"):
                return Ambiguity.model_validate(answer["ambiguity"])
            if answer.get("unreachable"):
                return Unreachable(message=f"behind the gateway: {answer['unreachable']}")
        except ValidationError:
            return Unreachable(message=f"the gateway at {self.url} answered a malformed target")
        return None

    async def run(self, operation: str, params: BaseModel) -> OperationResult:
        target = str(getattr(params, "target", ""))
        current = intent.current.get()
        mutating = OPERATIONS[operation].mutating if operation in OPERATIONS else True
        body = {
            "operation": operation,
            "target": target,
            "params": self._params(params),
            "intent": current.description if current else f"{operation} on {target}: evidence",
            "context": current.context if current else {},
            "idempotency_key": current.key if current else f"read:{uuid.uuid4().hex}",
        }
        try:
            answer = await self._post("/intents", body)
        except GatewayError as exc:
            kind: ErrorKind = "refused" if exc.refused else "unreachable"
            result = OperationResult.failure(operation, target, kind, str(exc))
            result.data["reason"] = exc.reason  # not the policy: the execute node records it
            if exc.sent and mutating:
                result.error = "timeout"
                result.data["in_flight"] = True  # it may have arrived: reconcile by its key
                result.message += "; it may have arrived: reconcile before trusting it"
            return result
        try:
            result = OperationResult.model_validate(answer.get("result"))
        except ValidationError:
            return OperationResult.failure(
                operation,
                target,
                "failed",
                f"the gateway at {self.url} answered a malformed result",
            )
        if answer.get("replayed"):
            result.data["replayed"] = True  # the gateway had done it already: not again
        return result

    async def snapshot(self, operation: str, params: BaseModel) -> dict[str, Any] | None:
        try:
            answer = await self._post(
                "/snapshot", {"operation": operation, "params": self._params(params)}
            )
        except GatewayError:
            return None
        snap = answer.get("snapshot")
        return snap if isinstance(snap, dict) else None

    async def reconcile(
        self, operation: str, params: BaseModel, before: dict[str, Any] | None, since: str | None
    ) -> Reconciliation:
        current = intent.current.get()
        body = {
            "operation": operation,
            "params": self._params(params),
            "before": before,
            "since": since,
            "idempotency_key": current.key if current else None,
        }
        try:
            answer = await self._post("/reconcile", body)
        except GatewayError as exc:
            return Reconciliation("unknown", str(exc))
        verdict = answer.get("verdict")
        if verdict not in ("done", "not_done", "unknown"):
            return Reconciliation("unknown", f"the gateway answered a verdict {verdict!r}")
        return Reconciliation(verdict, str(answer.get("detail", "")))
