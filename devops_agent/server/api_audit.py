"""The audit trail over HTTP: `GET /audit` (filtered, paged by sequence) and `GET /audit/verify`.

Read-only by design: the trail is appended by the graph and the kill switch, never through the
API. `after` is the last `seq` seen; `next` is the cursor of the following page, or null.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from devops_agent.alertmanager import Storable
from devops_agent.redact import redact_data
from devops_agent.server.deps import Services, services

router = APIRouter()
Svc = Annotated[Services, Depends(services)]


class AuditEntry(BaseModel):
    seq: int
    at: str
    run_id: str
    kind: str
    actor: str
    detail: dict[str, Any]
    hash: str


class AuditPage(BaseModel):
    rows: list[AuditEntry]
    next: int | None


class AuditVerification(BaseModel):
    ok: bool
    rows: int
    head: str
    problem: str


@router.get("/audit", summary="Audit trail rows, oldest first", response_model=AuditPage)
async def audit_rows(
    svc: Svc,
    run_id: Annotated[str | None, Query(min_length=1, max_length=64), Storable] = None,
    kind: Annotated[str | None, Query(min_length=1, max_length=32), Storable] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    after: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> AuditPage:
    rows = await svc.agent.ctx.audit.rows(run_id=run_id, kind=kind, limit=limit, after=after)
    entries = [
        AuditEntry(
            seq=r.seq,
            at=r.at,
            run_id=r.run_id,
            kind=r.kind,
            actor=r.actor,
            detail=redact_data(dict(r.detail or {})),
            hash=r.hash,
        )
        for r in rows
    ]
    return AuditPage(rows=entries, next=entries[-1].seq if len(entries) == limit else None)


@router.get(
    "/audit/verify",
    summary="Walk the hash chain: is any row edited, missing or moved?",
    response_model=AuditVerification,
)
async def audit_verify(svc: Svc) -> AuditVerification:
    result = await svc.agent.ctx.audit.verify()
    return AuditVerification(
        ok=result.ok, rows=result.rows, head=result.head, problem=result.problem
    )
