"""Driving one run this replica holds: what to feed the graph first (a start, a decision, a
settle window's wake-up, nothing), streaming its node updates to the event hub, and recording
where it stopped (waiting with its approval request, parked in its window, completed), with the
notice for people in the same transaction (the outbox)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from devops_agent import faults, telemetry
from devops_agent.approvals import approval_view
from devops_agent.memory.run_repo import RunRepo
from devops_agent.memory.runs import AWAITING, COMPLETED, QUEUED, RUNNING, RunRecord
from devops_agent.notify import approval_notice
from devops_agent.orchestration.events import EventHub
from devops_agent.orchestration.metrics import Metrics
from devops_agent.orchestration.summary import summary_of
from devops_agent.runner import Agent, is_settle
from devops_agent.state import HAPPENED, utcnow

log = logging.getLogger(__name__)
ACTED = (*HAPPENED, "failed")  # a run with a step in these has acted
SUPERSEDED = {
    "decision": "superseded",
    "approver": "alertmanager",
    "comment": "every alert of the run was resolved before the agent acted",
}


async def _nothing() -> None:
    """A first step that feeds the graph nothing."""


class RunDriver:
    def __init__(
        self,
        agent: Agent,
        repo: RunRepo,
        hub: EventHub,
        metrics: Metrics,
        owner: str,
        lease: float,
        resume_url: Callable[[str], str],
        notify_url: str | None,
    ):
        self.agent = agent
        self.repo = repo
        self.hub = hub
        self.metrics = metrics
        self.owner = owner
        self.lease = lease
        self.resume_url = resume_url
        self.notify_url = notify_url

    async def first_step(self, row: RunRecord, kind: str) -> Callable[[], Awaitable[None]] | None:
        """What to feed the graph first, given the row's status and its last checkpoint."""
        run_id = row.run_id
        if row.status == QUEUED:
            if not await self.repo.mark(run_id, RUNNING, only_from=[QUEUED], owner=self.owner):
                return None
            self.metrics.runs_started.inc()
            if await self.has_checkpoint(run_id):
                return lambda: self.stream(run_id)
            alerts = await self.repo.current_alerts(run_id)
            return lambda: self.stream(run_id, alerts=alerts)
        if row.status != RUNNING:
            return None  # finished, or waiting again (a decision task that lost a race)
        decision = row.pending_decision
        pending = await self.agent.pending_interrupt(run_id)
        if pending is not None and is_settle(pending):
            return lambda: self.stream(run_id, resume={"woke": True})  # the window's next check
        if decision and pending is not None:
            asked, current = decision.get("request_id"), pending.get("request_id")
            if asked and current and asked != current:
                # The decision answered an earlier request: this one waits for a person.
                log.warning(
                    "run %s: a decision for request %s does not answer %s", run_id, asked, current
                )
                return _nothing  # record_stop records it waiting for this request
            if decision.get("decision") == SUPERSEDED["decision"]:
                return lambda: self.supersede(run_id)
            return lambda: self.stream(run_id, resume=decision)
        if kind == "recover" and not await self.has_checkpoint(run_id):
            alerts = await self.repo.current_alerts(run_id)
            return lambda: self.stream(run_id, alerts=alerts)
        return lambda: self.stream(run_id)  # continue from the last checkpoint

    async def stream(
        self,
        run_id: str,
        alerts: list[Any] | None = None,
        resume: dict[str, Any] | None = None,
    ) -> None:
        if resume is not None:
            faults.hit("before_resume")
        stretch = (
            "start"
            if alerts is not None
            else "continue"
            if resume is None
            else "settle"
            if resume.get("woke")
            else "decision"
        )
        with telemetry.run_span(run_id, stretch=stretch) as root:
            try:
                async for node, update in self.agent.stream(run_id, alerts=alerts, resume=resume):
                    if node == "__interrupt__":
                        values = [getattr(i, "value", i) for i in update or ()]
                        self.hub.publish(run_id, "interrupt", {"node": node, "requests": values})
                        continue
                    self.metrics.node_updates.labels(node=node).inc()
                    self.hub.publish(run_id, "update", {"node": node, "update": update})
            finally:
                if root.is_recording():
                    state = await self.agent.state(run_id)
                    waiting = await self.agent.pending_approval(run_id)
                    telemetry.annotate(
                        root,
                        {
                            **telemetry.run_attributes(state),
                            "decision": (resume or {}).get("decision"),
                            "waiting": "approval" if waiting else None,
                        },
                    )

    async def supersede(self, run_id: str) -> None:
        """End a waiting run as superseded: as if escalate had run, then learn records it."""
        config = self.agent.config(run_id)
        values = {"outcome": "superseded", "notes": [SUPERSEDED["comment"]]}
        await self.agent.graph.aupdate_state(config, values, as_node="escalate")
        self.hub.publish(run_id, "update", {"node": "supersede", "update": values})
        await self.stream(run_id)

    async def record_stop(self, run_id: str) -> None:
        """After the graph stopped: record it as waiting (and notify) or as completed."""
        while True:
            request = await self.agent.pending_interrupt(run_id)
            if request is not None and is_settle(request):
                # Parked until the window's next check: no worker waits; any replica wakes it.
                wake = datetime.fromisoformat(str(request["wake_at"]))
                await self.repo.park(run_id, self.owner, wake)
                self.hub.publish(
                    run_id, "status", {"status": RUNNING, "settling_until": request["wake_at"]}
                )
                return
            if request is None:
                state = await self.agent.state(run_id)
                outcome = state.get("outcome") or "escalated"
                told = state.get("notice") if outcome in ("escalated", "rejected") else None
                await self.repo.mark(
                    run_id,
                    COMPLETED,
                    outcome=outcome,
                    summary=summary_of(state),
                    notice=("escalation", told) if told and self.notify_url else None,
                    clear_decision=True,
                    owner=self.owner,
                )
                self.metrics.runs_finished.labels(outcome=outcome).inc()
                self.hub.publish(run_id, "end", {"status": COMPLETED, "outcome": outcome})
                return
            faults.hit("before_mark_awaiting")
            await self.repo.mark(
                run_id,
                AWAITING,
                only_from=[RUNNING],
                awaiting_since=utcnow(),
                approval_request=request,
                decide_within=self.agent.ctx.settings.approval_timeout,
                notice=(
                    (
                        "approval_request",
                        approval_notice(approval_view(request), self.resume_url(run_id)),
                    )
                    if self.notify_url
                    else None
                ),
                clear_decision=True,
                owner=self.owner,
            )
            self.hub.publish(run_id, "status", {"status": AWAITING})
            # A resolution may have come in while the run was busy: close it now if so.
            if (
                not await self.acted(run_id)
                and await self.repo.all_resolved(run_id)
                and await self.repo.claim_decision(run_id, dict(SUPERSEDED), self.owner, self.lease)
            ):
                self.metrics.decisions.labels(decision="superseded").inc()
                await self.supersede(run_id)
                continue
            return

    async def acted(self, run_id: str) -> bool:
        state = await self.agent.state(run_id)
        return any(a.get("status") in ACTED for a in state.get("actions") or [])

    async def has_checkpoint(self, run_id: str) -> bool:
        snapshot = await self.agent.graph.aget_state(self.agent.config(run_id))
        return bool(snapshot.values)
