"""Runs and approvals: list, read, history, live events, and the human decision."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.exc import SQLAlchemyError

from devops_agent.alertmanager import Storable
from devops_agent.approvals import approval_view
from devops_agent.memory.runs import FINISHED, STATUSES, RunRecord
from devops_agent.memory.users import RESERVED_NAMES
from devops_agent.orchestration.events import sse
from devops_agent.redact import redact_data
from devops_agent.server import responses
from devops_agent.server.auth import user_of
from devops_agent.server.decisions import decide
from devops_agent.server.deps import Services, services
from devops_agent.server.views import changed_keys, run_view

router = APIRouter()
log = logging.getLogger(__name__)
Svc = Annotated[Services, Depends(services)]
KEEPALIVE_SECONDS = 15.0
STREAM_POLL_SECONDS = 1.0  # how often an idle event stream looks at the run's row


# Names the agent itself records decisions under: a person answering as one of them could pass
# for the policy (and skip the recheck of a step the policy approved by itself).
RESERVED_APPROVERS = RESERVED_NAMES


class ResumeBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    decision: Literal["approve", "reject"]
    # Stored as given, never interpreted; only text a database cannot hold is refused.
    # Optional: the approver is the authenticated user; a different name is refused (422).
    approver: Annotated[str, Storable] | None = Field(None, min_length=1, max_length=200)
    comment: Annotated[str, Storable] | None = Field(None, max_length=2000)
    # The request this decision answers (GET /approvals); a stale one is refused with 409.
    request_id: str | None = Field(None, max_length=64, pattern=r"^[0-9a-f]{1,64}$")
    # Approve this alternative of the request (its `id`) instead of the plan.
    override: int | None = Field(None, ge=0, le=100)

    @field_validator("approver")
    @classmethod
    def _a_person(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if not value.strip() or value.strip().lower() in RESERVED_APPROVERS:
            raise ValueError(
                f"{value.strip()!r} is reserved for the agent's own decisions: name the person"
            )
        return value


async def _view(svc: Services, row: RunRecord) -> dict[str, Any]:
    alerts = (await svc.repo.alerts_of([row.run_id]))[row.run_id]
    return run_view(row, alerts, await svc.agent.state(row.run_id))


async def _row(svc: Services, run_id: str) -> RunRecord:
    # No run id is that long or holds a NUL; PostgreSQL would refuse to even look it up.
    if len(run_id) > 128 or "\x00" in run_id:
        raise HTTPException(404, "no such run")
    row = await svc.repo.get(run_id)
    if row is None:
        raise HTTPException(404, f"no run {run_id!r}")
    return row


@router.get("/runs", summary="Runs, newest first", response_model=responses.RunList)
async def list_runs(
    svc: Svc,
    status: Annotated[str | None, Query(description=f"one of {', '.join(STATUSES)}")] = None,
    service: Annotated[Annotated[str, Storable] | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$")] = None,
) -> dict[str, Any]:
    if status is not None and status not in STATUSES:
        raise HTTPException(422, f"status: must be one of {', '.join(STATUSES)}")
    page = await svc.repo.page(
        status=status, service=service, limit=limit, cursor=int(cursor) if cursor else None
    )
    alerts = await svc.repo.alerts_of(r.run_id for r in page.runs)
    runs = [
        run_view(row, alerts[row.run_id], await svc.agent.state(row.run_id)) for row in page.runs
    ]
    return {"runs": runs, "next": page.next_cursor}


@router.get("/runs/{run_id}", summary="One run", response_model=responses.RunView)
async def get_run(run_id: str, svc: Svc) -> dict[str, Any]:
    return await _view(svc, await _row(svc, run_id))


@router.get(
    "/runs/{run_id}/history",
    summary="The run's checkpoints, oldest first",
    response_model=responses.History,
)
async def run_history(run_id: str, svc: Svc) -> dict[str, Any]:
    await _row(svc, run_id)
    config = svc.agent.config(run_id)
    snapshots = [s async for s in svc.agent.graph.aget_state_history(config)]
    snapshots.reverse()
    entries: list[dict[str, Any]] = []
    before: dict[str, Any] = {}
    previous_next: tuple[str, ...] = ()
    for snap in snapshots:
        meta = dict(snap.metadata or {})
        source = meta.get("source")
        node = {"input": "input", "update": "update"}.get(str(source), ",".join(previous_next))
        entries.append(
            {
                "checkpoint_id": snap.config.get("configurable", {}).get("checkpoint_id"),
                "step": meta.get("step"),
                "source": source,
                "node": node or None,
                "time": snap.created_at,
                "changed": changed_keys(before, dict(snap.values or {})),
                "next": list(snap.next),
            }
        )
        before = dict(snap.values or {})
        previous_next = tuple(snap.next)
    return {"run_id": run_id, "checkpoints": entries}


@router.get("/runs/{run_id}/events", summary="Server-Sent Events of the run's node updates")
async def run_events(run_id: str, svc: Svc) -> StreamingResponse:
    await _row(svc, run_id)

    async def stream() -> AsyncIterator[str]:
        async with svc.hub.subscribe(run_id) as queue:
            row = await _row(svc, run_id)
            yield sse("state", await _view(svc, row))
            if row.status in FINISHED:
                yield sse("end", {"status": row.status, "outcome": row.outcome})
                return
            seen, quiet = row.updated_at, 0.0
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), STREAM_POLL_SECONDS)
                except TimeoutError:
                    # Another replica's events come through the relay, best effort: its run's
                    # row shows each change of status and the end even when one was lost.
                    if run_id not in svc.manager.executing:
                        try:
                            row = await _row(svc, run_id)
                            if row.status in FINISHED:
                                yield sse("state", await _view(svc, row))
                                yield sse("end", {"status": row.status, "outcome": row.outcome})
                                return
                            if row.updated_at != seen:
                                seen = row.updated_at
                                yield sse("state", await _view(svc, row))
                        except SQLAlchemyError as exc:  # storage away: try again next time
                            log.warning("events of %s: %s", run_id, type(exc).__name__)
                    quiet += STREAM_POLL_SECONDS
                    if quiet >= KEEPALIVE_SECONDS:
                        quiet = 0.0
                        yield ": keepalive\n\n"
                    continue
                quiet = 0.0
                if event["event"] == "end":
                    yield sse("state", await _view(svc, await _row(svc, run_id)))
                    yield sse("end", event["data"])
                    return
                yield sse(event["event"], event["data"])

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get(
    "/approvals",
    summary="Runs waiting for a human decision, longest waiting first",
    response_model=responses.Approvals,
)
async def approvals(
    svc: Svc,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    cursor: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,200}$")] = None,
) -> dict[str, Any]:
    try:
        page = await svc.repo.waiting(limit=limit, cursor=cursor)
    except ValueError as exc:
        raise HTTPException(422, f"cursor: {exc}") from exc
    waiting = []
    for row in page.runs:
        # Kept on the row since migration 0003; a run that began waiting before it has only
        # its checkpoint.
        request = row.approval_request or await svc.agent.pending_approval(row.run_id) or {}
        view = approval_view(request)
        waiting.append(
            {
                **view,
                "run_id": row.run_id,
                "incident_id": row.incident_id,
                "service": row.service,
                "waiting_since": row.awaiting_since,
                "resume": f"/runs/{row.run_id}/resume",
            }
        )
    return {"approvals": redact_data(waiting), "next": page.next_cursor}


@router.post(
    "/runs/{run_id}/resume",
    status_code=202,
    response_model=responses.ResumeAccepted,
    summary="Approve or reject a waiting run",
    responses={404: {}, 409: {}, 422: {}},
)
async def resume_run(run_id: str, body: ResumeBody, svc: Svc, request: Request) -> JSONResponse:
    user = user_of(request.scope)
    if user is not None and body.approver is not None and body.approver != user.name:
        return JSONResponse(
            {
                "detail": f"approver: {body.approver!r} is not you: the approver is the "
                f"authenticated user ({user.name}); leave it out"
            },
            status_code=422,
        )
    decided = await decide(
        svc, run_id, body.decision, user, body.comment or "", body.request_id, body.override
    )
    return JSONResponse(decided.body, status_code=decided.status)
