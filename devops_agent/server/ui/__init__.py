"""The web console at /ui: log in, runs, a run's live timeline, approvals, audit, kill switch,
learned patterns. Only approvers decide, only admins flip the kill switch; viewers see."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.staticfiles import StaticFiles

from devops_agent.memory.runs import STATUSES
from devops_agent.memory.users import User, token_hash
from devops_agent.server import api_runs
from devops_agent.server.api_control import flip, kill_switch
from devops_agent.server.api_ops import pattern_view
from devops_agent.server.auth import user_of
from devops_agent.server.decisions import decide
from devops_agent.server.deps import Services, services
from devops_agent.server.ui.common import (
    STATIC,
    csrf_ok,
    form_of,
    page,
    redirect,
    refused,
    session_of,
    sessions_of,
)
from devops_agent.server.views import run_view

router = APIRouter(prefix="/ui", include_in_schema=False)
Svc = Annotated[Services, Depends(services)]
OUTCOMES = ("resolved", "escalated", "rejected", "no_action", "superseded")
static = StaticFiles(directory=STATIC)


def _who(request: Request) -> User | None:
    return user_of(request.scope)


@router.get("")
async def home() -> Response:
    return redirect("/ui/runs")


@router.get("/login")
async def login_page(request: Request) -> Response:
    sessions = sessions_of(request)
    if not sessions.enabled:
        return refused(request, 503, "the console needs SESSION_KEY (DATABASE_URL is PostgreSQL)")
    session = session_of(request)
    if session is not None:
        return page(request, "login.html", nonce=session.nonce)
    fresh, cookie = sessions.new(None)
    return page(request, "login.html", nonce=fresh.nonce, set_cookie=cookie)


@router.post("/login")
async def login(request: Request) -> Response:
    sessions = sessions_of(request)
    form = await form_of(request)
    if not sessions.enabled:
        return refused(request, 503, "the console needs SESSION_KEY (DATABASE_URL is PostgreSQL)")
    if not csrf_ok(request, form, None):
        return refused(request, 403, "the form's CSRF token is missing or wrong: reload the page")
    token = form.get("token", "").strip()
    auth = request.app.state.authenticator
    user = await auth.by_token(token) if token and len(token) < 512 else None
    if user is None:
        session = session_of(request)
        return page(
            request,
            "login.html",
            status=401,
            error="unknown token",
            nonce=session and session.nonce,
        )
    _, cookie = sessions.new(token_hash(token))  # a new nonce: a session is never fixed
    return redirect("/ui/runs", set_cookie=cookie, request=request)


@router.post("/logout")
async def logout(request: Request) -> Response:
    form = await form_of(request)
    if not csrf_ok(request, form, _who(request)):
        return refused(request, 403, "the form's CSRF token is missing or wrong: reload the page")
    return redirect("/ui/login", set_cookie="", request=request)


def _login_first(request: Request) -> Response | None:
    return None if _who(request) is not None else redirect("/ui/login")


@router.get("/runs")
async def runs(
    request: Request,
    svc: Svc,
    status: str = "",
    service: str = "",
    outcome: str = "",
    cursor: str = "",
) -> Response:
    if (gone := _login_first(request)) is not None:
        return gone
    if status and status not in STATUSES or outcome and outcome not in OUTCOMES:
        return refused(request, 422, "unknown status or outcome")
    if len(service) > 255 or "\x00" in service or cursor and not cursor.isdigit():
        return refused(request, 422, "bad service or cursor")
    found = await svc.repo.page(
        status=status or None,
        service=service or None,
        limit=50,
        cursor=int(cursor) if cursor and len(cursor) < 19 else None,
    )
    alerts = await svc.repo.alerts_of(r.run_id for r in found.runs)
    shown = [run_view(r, alerts[r.run_id], await svc.agent.state(r.run_id)) for r in found.runs]
    if outcome:
        shown = [r for r in shown if r["outcome"] == outcome]
    filters = {"status": status, "service": service, "outcome": outcome}
    return page(
        request,
        "runs.html",
        runs=shown,
        next=found.next_cursor,
        filters=filters,
        statuses=STATUSES,
        outcomes=OUTCOMES,
    )


@router.get("/runs/{run_id}")
async def run_page(request: Request, run_id: str, svc: Svc) -> Response:
    if (gone := _login_first(request)) is not None:
        return gone
    row = await svc.repo.get(run_id) if len(run_id) <= 128 and "\x00" not in run_id else None
    if row is None:
        return refused(request, 404, "no such run")
    view = await api_runs._view(svc, row)
    history = await api_runs.run_history(run_id, svc)
    return page(request, "run.html", run=view, checkpoints=history["checkpoints"])


@router.get("/runs/{run_id}/events")
async def run_events(request: Request, run_id: str, svc: Svc) -> Response:
    """The run's Server-Sent Events for the timeline (the session's user, no token in a URL)."""
    if _who(request) is None:
        return refused(request, 401, "log in first")
    stream: StreamingResponse = await api_runs.run_events(run_id, svc)
    return stream


@router.get("/approvals")
async def approvals(request: Request, svc: Svc) -> Response:
    if (gone := _login_first(request)) is not None:
        return gone
    listed = await api_runs.approvals(svc, limit=100, cursor=None)
    return page(request, "approvals.html", approvals=listed["approvals"])


@router.post("/runs/{run_id}/decide")
async def decide_form(request: Request, run_id: str, svc: Svc) -> Response:
    user = _who(request)
    form = await form_of(request)
    if user is None:
        return redirect("/ui/login")
    if not csrf_ok(request, form, user):
        return refused(request, 403, "the form's CSRF token is missing or wrong: reload the page")
    decision = form.get("decision", "")
    if decision not in ("approve", "reject", "override"):
        return refused(request, 422, "decision: approve, reject or override")
    override: int | None = None
    if decision == "override":
        choice = form.get("alternative", "")
        if not choice.isdigit() or int(choice) > 100:
            return refused(request, 422, "override: choose one of the alternatives")
        override, decision = int(choice), "approve"
    comment = form.get("comment", "")[:2000]
    request_id = form.get("request_id") or None
    if request_id is not None and (len(request_id) > 64 or not request_id.isalnum()):
        return refused(request, 422, "request_id: not a request id")
    decided = await decide(svc, run_id, decision, user, comment, request_id, override)  # type: ignore[arg-type]
    if not decided.ok:
        return refused(request, decided.status, str(decided.body.get("detail", "refused")))
    return redirect(f"/ui/runs/{run_id}")


@router.get("/audit")
async def audit(request: Request, svc: Svc, after: int = 0) -> Response:
    if (gone := _login_first(request)) is not None:
        return gone
    from devops_agent.server.api_audit import audit_rows, audit_verify

    rows = await audit_rows(svc, limit=100, after=max(0, min(after, 2**62)))
    verified = await audit_verify(svc)
    return page(request, "audit.html", rows=rows.rows, next=rows.next, verified=verified)


@router.get("/control")
async def control(request: Request, svc: Svc) -> Response:
    if (gone := _login_first(request)) is not None:
        return gone
    return page(request, "control.html", switch=await kill_switch(svc))


@router.post("/control")
async def control_form(request: Request, svc: Svc) -> Response:
    user = _who(request)
    form = await form_of(request)
    if user is None:
        return redirect("/ui/login")
    if not csrf_ok(request, form, user):
        return refused(request, 403, "the form's CSRF token is missing or wrong: reload the page")
    if not user.may("admin"):
        return refused(request, 403, f"{user.name} is a {user.role}: only admins flip the switch")
    paused = form.get("paused") == "true"
    client = request.client.host if request.client else None
    await flip(svc, user, paused, form.get("reason", "")[:2000], client)
    return redirect("/ui/control")


@router.get("/patterns")
async def patterns(request: Request, svc: Svc) -> Response:
    if (gone := _login_first(request)) is not None:
        return gone
    rows: list[dict[str, Any]] = [pattern_view(r) for r in await svc.agent.ctx.store.patterns()]
    return page(request, "patterns.html", patterns=rows)
