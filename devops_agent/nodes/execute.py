"""execute: run the plan's steps, each judged and recorded in the action ledger before it runs.

The ledger key is (run, attempt, step), and a row is a claim, not proof. Each step:

1. resolves its target's identity and snapshots what the step would change;
2. is judged by the policy and recorded as started in one transaction, serialised per target
   and fenced by the run's lease (memory.ledger.begin): another run acting on the target now
   means this run joins it; a refusal refuses; a step the policy approved by itself asks a
   person when a reason to ask appeared since (the kill switch);
3. runs (or not, in a dry run), and its end is recorded with its audit row in one transaction.

A step found in the ledger (the node re-run on resume) is never run blindly again: one that
succeeded comes back `skipped` (it happened), one that failed or was refused comes back as it
ended, and one that began but never ended is reconciled with the infrastructure: found done, it
is recorded `succeeded` with `reconciled`; surely not done, it runs once; unknown, the run
escalates with `reconcile_unknown`. execute_command is never run a second time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from devops_agent import faults, fencing, intent
from devops_agent.context import AgentContext
from devops_agent.memory.db import LedgerEntry
from devops_agent.memory.ledger import StepEntry
from devops_agent.nodes.common import target_keys
from devops_agent.nodes.requests import approval_request
from devops_agent.nodes.validate import settled_health
from devops_agent.operations import OPERATIONS
from devops_agent.policy import Finding, StepVerdict, judge_step
from devops_agent.policy.reasons import REASONS
from devops_agent.state import (
    ActionRecord,
    Approval,
    IncidentState,
    PlanStep,
    RunState,
    utcnow,
)

POLICY_ACTORS = ("policy", "")  # an approval by these is not a person's


@dataclass
class StepOutcome:
    """A step that ran (or was refused, skipped, reconciled): `record`; or one that did not
    start because a person must decide it first, or another run is acting on its target."""

    record: ActionRecord | None = None
    verdict: StepVerdict | None = None
    escalate: Finding | None = None  # the step leaves the run no way on (reconcile_unknown)


def approved_by_person(approval: Approval | None) -> bool:
    return bool(
        approval and approval.decision == "approve" and approval.approver not in POLICY_ACTORS
    )


async def run_step(
    ctx: AgentContext,
    run_id: str,
    attempt: int,
    index: int,
    step: PlanStep,
    *,
    by_person: bool,
    rollback_of: int | None = None,
    evidence_at: str | None = None,
    category: str | None = None,
) -> StepOutcome:
    """Judge, record, run and record the end of one step (the module's docstring says how).
    The step is the current intent meanwhile: its ledger key, its rationale, the incident."""
    why = step.rationale or "the plan's step"
    doing = intent.Intent(
        key=intent.ledger_key(run_id, attempt, index),
        description=f"{step.operation} on {step.target}: {why}",
        context={
            "run_id": run_id,
            "attempt": attempt,
            "step": index,
            "service": step.target,
            "category": category,
            "rollback_of": rollback_of,
        },
    )
    with intent.acting(doing):
        return await _run_step(
            ctx, run_id, attempt, index, step, by_person, rollback_of, evidence_at, category
        )


async def _run_step(
    ctx: AgentContext,
    run_id: str,
    attempt: int,
    index: int,
    step: PlanStep,
    by_person: bool,
    rollback_of: int | None,
    evidence_at: str | None,
    category: str | None,
) -> StepOutcome:
    params = {**step.params, "target": step.target}
    record = ActionRecord(
        attempt=attempt,
        step=index,
        operation=step.operation,
        target=step.target,
        params=params,
        status="succeeded",
        started_at=utcnow(),
        rollback_of=rollback_of,
    )
    mutating = OPERATIONS.get(step.operation, OPERATIONS["health_check"]).mutating
    keys = await target_keys(ctx, [step])
    record.snapshot = await ctx.registry.snapshot(step.operation, params) if mutating else None
    replicas = (record.snapshot or {}).get("replicas")
    s = ctx.settings

    def judge(facts: Any) -> StepVerdict:
        return judge_step(
            step,
            s,
            ctx.policy,
            facts,
            by_person=by_person,
            undo=rollback_of is not None,
            replicas_before={step.target: replicas} if replicas is not None else None,
        )

    entry = StepEntry(
        run_id=run_id,
        attempt=attempt,
        step=index,
        operation=step.operation,
        target=step.target,
        target_key=keys.get(step.target, f"unresolved:{step.target}"),
        params=params,
        snapshot=record.snapshot,
        evidence_at=evidence_at,
        category=category,
    )
    await faults.pause("before_begin_step")
    begun = await ctx.store.begin_step(entry, fencing.current.get(), s, judge)
    if begun.earlier is not None:
        return await _recorded(ctx, run_id, record, begun.earlier)
    verdict = begun.verdict
    assert verdict is not None
    if verdict.kind in ("ask", "join", "stop"):
        return StepOutcome(verdict=verdict)
    if verdict.kind == "refuse":
        record.status, record.output, record.reason = "refused", verdict.why, verdict.reason
        record.finished_at = utcnow()
        await ctx.audit.append(run_id, "action", "agent", record.model_dump(mode="json"))
        return StepOutcome(record)
    if s.dry_run:
        record.status, record.reason = "dry_run", "dry_run"
        record.output = f"DRY_RUN: would run {step.operation} with {params}"
        await _finish(ctx, run_id, record)
        return StepOutcome(record)
    return await _act(ctx, run_id, record)


async def _act(ctx: AgentContext, run_id: str, record: ActionRecord) -> StepOutcome:
    """Run a step recorded as started, then record how it ended."""
    faults.hit("after_begin_step")
    result = await ctx.registry.run(record.operation, record.params)
    faults.hit("after_backend_call")
    escalate = None
    if result.data.get("in_flight"):
        # The call outlived its deadline while the engine may go on: ask reality, not the call.
        found = await ctx.registry.reconcile(
            record.operation, record.params, record.snapshot, record.started_at
        )
        if found.verdict == "done":
            record.status, record.reconciled = "succeeded", True
            record.output = f"{result.message}; found done: {found.detail}"
        else:
            record.status, record.reason = "failed", "reconcile_unknown"
            record.output = f"{result.error}: {result.message}; {found.detail}"
            escalate = Finding(
                "reconcile_unknown", f"{record.operation} on {record.target}: {record.output}"
            )
    elif result.ok:
        record.status, record.output = "succeeded", result.message
    else:
        record.status = "refused" if result.error in ("refused", "invalid") else "failed"
        record.output = f"{result.error}: {result.message}"
        code = result.data.get("reason")
        if record.status == "refused" and code in REASONS:  # the backend refused, not the policy
            record.reason = code
            escalate = Finding(
                code,  # one of REASONS
                f"the backend refused {record.operation} on {record.target}: {result.message}",
            )
    await _finish(ctx, run_id, record)
    faults.hit("after_finish_step")
    return StepOutcome(record, escalate=escalate)


async def _finish(ctx: AgentContext, run_id: str, record: ActionRecord) -> None:
    """The ledger's end and the action's audit row, in one transaction."""
    record.finished_at = utcnow()
    await ctx.store.finish_step(
        run_id,
        record.attempt,
        record.step,
        record.status,
        record.output,
        reconciled=record.reconciled,
        reason=record.reason,
        lease=fencing.current.get(),
        also=ctx.audit.writer(run_id, "action", "agent", record.model_dump(mode="json")),
    )


async def _recorded(
    ctx: AgentContext, run_id: str, record: ActionRecord, earlier: LedgerEntry
) -> StepOutcome:
    """A step the ledger already has: what it says, or what reality says when it never ended."""
    record.snapshot = earlier.snapshot or record.snapshot
    record.started_at = earlier.started_at
    if earlier.status == "succeeded":
        record.status, record.reconciled = "skipped", bool(earlier.reconciled)
        record.output = f"done before a resume, not run again: {earlier.output}"
        record.finished_at = earlier.finished_at
        await _audit_once(ctx, run_id, record)
        return StepOutcome(record)
    if earlier.status != "started":
        record.status = earlier.status  # type: ignore[assignment]
        record.output, record.reason = earlier.output, earlier.reason
        record.finished_at = earlier.finished_at
        await _audit_once(ctx, run_id, record)
        escalate = (
            Finding("reconcile_unknown", earlier.output)
            if earlier.reason == "reconcile_unknown"
            else None
        )
        return StepOutcome(record, escalate=escalate)
    found = await ctx.registry.reconcile(
        record.operation, record.params, earlier.snapshot, earlier.started_at
    )
    if found.verdict == "not_done":
        return await _act(ctx, run_id, record)
    if found.verdict == "done":
        record.status, record.reconciled = "succeeded", True
        record.output = f"interrupted by a restart of the agent, found done: {found.detail}"
        await _finish(ctx, run_id, record)
        return StepOutcome(record)
    record.status, record.reason = "failed", "reconcile_unknown"
    record.output = f"interrupted by a restart of the agent; reality cannot tell: {found.detail}"
    await _finish(ctx, run_id, record)
    message = f"{record.operation} on {record.target} may or may not have happened: {found.detail}"
    return StepOutcome(record, escalate=Finding("reconcile_unknown", message))


async def _audit_once(ctx: AgentContext, run_id: str, record: ActionRecord) -> None:
    """The audit row of a step recorded before a crash, if the crash came before it."""
    for row in await ctx.audit.rows(run_id=run_id, kind="action"):
        detail = row.detail or {}
        if (detail.get("attempt"), detail.get("step")) == (record.attempt, record.step):
            return
    await ctx.audit.append(run_id, "action", "agent", record.model_dump(mode="json"))


async def execute(state: IncidentState, ctx: AgentContext) -> IncidentState:
    run = RunState(state)
    plan, run_id, attempt = run.plan, run.run_id, run.attempts + 1
    assert plan is not None, "only approved plans reach execute"
    by_person = approved_by_person(run.approval)
    # Steps already on the run: this attempt was deferred to a person at a later step.
    shown = {(a.attempt, a.step) for a in run.actions}
    records: list[ActionRecord] = []
    update: IncidentState = {}
    for index, step in enumerate(plan.steps):
        outcome = await run_step(
            ctx,
            run_id,
            attempt,
            index,
            step,
            by_person=by_person,
            evidence_at=run.diagnosed_at,
            category=run.category,
        )
        verdict = outcome.verdict
        if verdict is not None and verdict.kind == "ask":
            request = approval_request(
                state,
                plan,
                verdict.findings,
                policy=f"policy {ctx.policy.digest}",
                timeout=ctx.settings.approval_timeout,
                attempt=attempt,
                scope=f"step {index}",
            )
            detail = {"why": request["why"], "reason": request["reason"], "step": index}
            await ctx.audit.append(run_id, "approval_request", "policy", detail)
            update = {"approval": None, "approval_request": request}
            break
        if verdict is not None and verdict.kind == "stop":
            update = {"outcome": "superseded", "notes": [verdict.note]}
            break
        if verdict is not None and verdict.kind == "join":
            # One incident: the run acting on the target handles it; this one records how its
            # own target fares once that run acted, and ends.
            seen = await settled_health(ctx, run)
            update = {
                "outcome": "superseded",
                "escalation_reason": "joined",
                "handled_by": verdict.handled_by,
                "validation": seen.model_dump(mode="json"),
                "notes": [f"joined: {verdict.why}"],
            }
            break
        assert outcome.record is not None
        records.append(outcome.record)
        if outcome.escalate is not None:
            update = {
                "escalation": outcome.escalate.message,
                "escalation_reason": outcome.escalate.code,
            }
            break
        if outcome.record.status in ("failed", "refused"):
            if outcome.record.status == "refused":
                update = {
                    "escalation": f"the policy refused a step: {outcome.record.output}",
                    "escalation_reason": outcome.record.reason or "policy_forbid",
                }
            break
    else:
        if records and all(r.status == "dry_run" for r in records):
            update = {
                "escalation": "DRY_RUN: the plan was recorded, nothing was changed",
                "escalation_reason": "dry_run",
            }
    fresh = [r.model_dump(mode="json") for r in records if (r.attempt, r.step) not in shown]
    if "approval_request" not in update:
        update["attempts"] = attempt
    return {**update, "actions": fresh}
