"""Several Docker engines (INFRA_TARGETS): a target is found across them, never guessed.

Each engine is a Docker backend of its own (unix://, or tcp:// with TLS). A name that exactly
one engine has is that engine's target; a name that two engines have is ambiguous (the run
escalates with `ambiguous_target`); an engine that does not answer is evidence: an operation on
a target found elsewhere says so in its result, and a name that no answering engine has while
one did not answer is not `unknown`, it is unreachable.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import docker.tls
from docker.errors import DockerException
from pydantic import BaseModel
from requests.exceptions import RequestException

from devops_agent.infra import CERT_FILES, cert_dir
from devops_agent.state import Ambiguity, Target, Unreachable
from devops_agent.tools.docker import DockerBackend
from devops_agent.tools.docker.targets import lookup, target_of
from devops_agent.tools.registry import OperationResult, Reconciliation

ENGINE_DEADLINE = 15.0  # seconds one engine may take to say whether it has a name


def tls_config(cert_path: Path, engine: str) -> docker.tls.TLSConfig:
    where = cert_dir(cert_path, engine)
    ca, cert, key = (str(where / name) for name in CERT_FILES)
    return docker.tls.TLSConfig(client_cert=(cert, key), ca_cert=ca, verify=True)


class _Lost:
    """An engine that did not answer a lookup."""

    def __init__(self, why: str):
        self.why = why


class EnginesBackend:
    """The registry's operations across several Docker engines."""

    name = "docker"

    def __init__(self, engines: dict[str, DockerBackend]) -> None:
        self.engines = engines

    async def _lookup(
        self, engine: str, name: str, project: str | None
    ) -> Target | Ambiguity | _Lost | None:
        backend = self.engines[engine]

        def fn() -> Target | Ambiguity | None:
            found = lookup(backend.client(), name, project)
            return (
                found if found is None or isinstance(found, Ambiguity) else target_of(name, found)
            )

        try:
            return await asyncio.wait_for(asyncio.to_thread(fn), ENGINE_DEADLINE)
        except TimeoutError:
            return _Lost(f"no answer in {ENGINE_DEADLINE:g}s")
        except (DockerException, RequestException, OSError) as exc:
            return _Lost(backend._unreachable(exc))

    async def _find(
        self, name: str, project: str | None
    ) -> tuple[dict[str, Target | Ambiguity], dict[str, str]]:
        """Where `name` is (engine -> what it means there), and the engines that did not answer."""
        names = list(self.engines)
        answers = await asyncio.gather(*(self._lookup(e, name, project) for e in names))
        found: dict[str, Target | Ambiguity] = {}
        lost: dict[str, str] = {}
        for engine, answer in zip(names, answers, strict=True):
            if isinstance(answer, _Lost):
                lost[engine] = answer.why
            elif answer is not None:
                found[engine] = answer
        return found, lost

    @staticmethod
    def _silent(lost: dict[str, str]) -> str:
        return "; ".join(f"engine {e} did not answer ({why})" for e, why in lost.items())

    # -- the Backend protocol ---------------------------------------------------------------

    async def resolve(
        self, candidates: list[str], project: str | None = None
    ) -> Target | Ambiguity | Unreachable | None:
        ambiguous: Ambiguity | None = None
        silent: dict[str, str] = {}
        for name in candidates:
            found, lost = await self._find(name, project)
            silent.update(lost)
            if len(found) > 1:
                ambiguous = ambiguous or Ambiguity(
                    name=name, matches=sorted(f"engine {e}: {name}" for e in found)
                )
            elif found:
                ((engine, what),) = found.items()
                if isinstance(what, Ambiguity):
                    ambiguous = ambiguous or what
                    continue
                return what.model_copy(update={"key": f"engine:{engine}/{what.key}"})
        if ambiguous:
            return ambiguous
        if silent:
            return Unreachable(message=f"not on the engines that answered; {self._silent(silent)}")
        return None

    async def _route(
        self, operation: str, params: BaseModel
    ) -> tuple[str, DockerBackend, dict[str, str]] | OperationResult:
        """The one engine with the target, and the engines that did not answer; or why not."""
        target = str(getattr(params, "target", ""))
        found, lost = await self._find(target, getattr(params, "project", None))
        if len(found) > 1:
            return OperationResult.failure(
                operation,
                target,
                "invalid",
                f"{target!r} is on several engines ({', '.join(sorted(found))}): ambiguous",
            )
        if not found:
            if lost:
                return OperationResult.failure(
                    operation, target, "unreachable", f"{target}: {self._silent(lost)}"
                )
            return OperationResult.failure(
                operation, target, "not_found", f"no engine has a container or service {target!r}"
            )
        ((engine, _),) = found.items()
        return engine, self.engines[engine], lost

    async def run(self, operation: str, params: BaseModel) -> OperationResult:
        routed = await self._route(operation, params)
        if isinstance(routed, OperationResult):
            return routed
        engine, backend, lost = routed
        result = await backend.run(operation, params)
        result.data["engine"] = engine
        if lost:  # evidence: what the silent engines might have said is not known
            result.data["engines_unreachable"] = lost
            result.message += f"; {self._silent(lost)}"
        return result

    async def snapshot(self, operation: str, params: BaseModel) -> dict[str, Any] | None:
        routed = await self._route(operation, params)
        if isinstance(routed, OperationResult):
            return None
        snap = await routed[1].snapshot(operation, params)
        return {**snap, "engine": routed[0]} if snap is not None else None

    async def reconcile(
        self, operation: str, params: BaseModel, before: dict[str, Any] | None, since: str | None
    ) -> Reconciliation:
        routed = await self._route(operation, params)
        if isinstance(routed, OperationResult):
            return Reconciliation("unknown", routed.message)
        if before and before.get("engine") not in (None, routed[0]):
            return Reconciliation("unknown", f"the target moved to engine {routed[0]}")
        return await routed[1].reconcile(operation, params, before, since)

    async def ping(self) -> OperationResult:
        names = list(self.engines)
        pings = await asyncio.gather(*(self.engines[e].ping() for e in names))
        up = [e for e, p in zip(names, pings, strict=True) if p.ok]
        message = "; ".join(f"{e}: {p.message}" for e, p in zip(names, pings, strict=True))
        return OperationResult(
            operation="ping",
            target="",
            ok=bool(up),
            error=None if up else "unreachable",
            message=message,
            data={"engines": {e: p.ok for e, p in zip(names, pings, strict=True)}},
        )
