"""What the demo prints: one line per node as it finishes, and the approval request with the
ways to decide it. Text only; the demo decides nothing here."""

from __future__ import annotations

import json
import shlex
from typing import Any

from rich.console import Console

console = Console(highlight=False, soft_wrap=True)
errors = Console(stderr=True, highlight=False, soft_wrap=True)


def node_line(node: str, update: dict[str, Any]) -> str:
    """One human line for a node's update."""
    if node == "triage":
        return str((update.get("triage") or {}).get("reason", ""))
    if node == "root_cause":
        return diagnosis_line(update.get("diagnosis") or {})
    if node == "plan":
        return plan_line(update.get("plan") or {})
    if node in ("approve", "await_approval"):
        if update.get("approval_request"):
            return "a person must decide: " + str(update["approval_request"].get("why", ""))
        approval = update.get("approval") or {}
        return f"{approval.get('decision')} by {approval.get('approver') or 'unknown'}"
    if node == "execute":
        return "; ".join(
            f"{a.get('operation')}({a.get('target')}) {a.get('status')}: {a.get('output')}"
            for a in update.get("actions") or []
        )
    if node == "validate":
        validation = update.get("validation") or {}
        checks = "; ".join(str(c.get("summary")) for c in validation.get("checks") or [])
        line = ("healthy" if validation.get("healthy") else "unhealthy") + f": {checks}"
        if validation.get("healthy") and validation.get("settle_until"):
            line += f"; it must hold until {validation['settle_until']} (VALIDATE_SETTLE)"
        return line
    if node == "settle":  # VALIDATE_SETTLE: the fix must hold before the run is resolved
        validation = update.get("validation") or {}
        if validation.get("held"):
            return "the fix held through the settle window"
        if not validation.get("healthy"):
            return "the fix did not hold: " + "; ".join(
                str(c.get("summary")) for c in validation.get("checks") or []
            )
        return f"still healthy; watching until {validation.get('settle_until')}"
    if node == "escalate":
        return f"{update.get('outcome')}: {update.get('escalation')}"
    if node == "learn":
        return f"outcome {update.get('outcome')}"
    if update == {"done": True}:
        return "done"
    return json.dumps(update, default=str)[:200]


def diagnosis_line(diagnosis: dict[str, Any]) -> str:
    confidence = diagnosis.get("confidence") or 0
    return (
        f"[bold]{diagnosis.get('category')}[/] ({confidence:.2f}, "
        f"{diagnosis.get('reasoner')}): {diagnosis.get('root_cause')}"
    )


def plan_line(plan: dict[str, Any]) -> str:
    steps = ", ".join(f"{s.get('operation')}({s.get('target')})" for s in plan.get("steps") or [])
    action = plan.get("action") or ("act" if steps else "no action")
    return f"{action}{': ' + steps if steps else ''}"


def show_node(node: str, update: dict[str, Any]) -> None:
    console.print(f"  [cyan]{node:>14}[/] {node_line(node, update or {})}")


def show_request(run_id: str, request: dict[str, Any]) -> None:
    """The approval request: diagnosis, plan, why, deadline."""
    diagnosis = request.get("diagnosis") or {}
    plan = request.get("plan") or {}
    console.print(f"\n[yellow bold]approval needed[/] for run [bold]{run_id}[/]")
    console.print(f"  diagnosis: {diagnosis_line(diagnosis)}")
    for item in diagnosis.get("evidence") or []:
        text = item.get("summary") if isinstance(item, dict) else item
        console.print(f"             - {text}")
    for step in plan.get("steps") or []:
        console.print(
            f"  plan:      {step.get('operation')} {step.get('target')} "
            f"({step.get('risk')} risk): {step.get('rationale')}"
        )
    console.print(f"  why:       {request.get('why')}")
    console.print(f"  deadline:  {request.get('deadline')}")


def show_how_to_decide(url: str, run_id: str, token_shell: str, console_url: str | None) -> None:
    """The curl line (the token by reference, never its value) and the demo's own way."""
    body = json.dumps({"decision": "approve"})
    console.print("\ndecide it with:")
    console.print(
        f'  curl -X POST -H "Authorization: Bearer {token_shell}" '
        f"-H 'Content-Type: application/json' \\\n"
        f"    {url}/runs/{run_id}/resume -d {shlex.quote(body)}"
    )
    console.print(
        '  (or "decision": "reject"); `devops-agent demo --approve` approves without asking'
    )
    if console_url:
        console.print(f"  or in the console: {console_url}")
