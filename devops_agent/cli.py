"""`devops-agent`: serve the API, or run one Alertmanager payload through the graph."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.prompt import Confirm, Prompt

from devops_agent.alertmanager import WebhookPayload
from devops_agent.config import Settings, SettingsError, load_settings
from devops_agent.context import AgentContext
from devops_agent.runner import open_agent

console = Console(highlight=False)
SUCCESS_OUTCOMES = ("resolved", "no_action", "superseded")


def _summary(node: str, update: dict[str, Any]) -> str:
    """One human line for a node's update."""
    if node == "triage":
        return str(update.get("triage", {}).get("reason", ""))
    if node == "root_cause":
        d = update.get("diagnosis") or {}
        return f"[bold]{d.get('category')}[/] ({d.get('confidence', 0):.2f}, {d.get('reasoner')}): {d.get('root_cause')}"
    if node == "plan":
        p = update.get("plan") or {}
        steps = ", ".join(f"{s['operation']}({s['target']})" for s in p.get("steps", []))
        return f"{p.get('action')}{': ' + steps if steps else ''}. {p.get('why', '')}"
    if node in ("approve", "await_approval"):
        if update.get("approval_request"):
            return "a person must decide: " + str(update["approval_request"].get("why", ""))
        a = update.get("approval") or {}
        return f"{a.get('decision')} by {a.get('approver') or 'unknown'}"
    if node == "execute":
        return "; ".join(
            f"{a['operation']}({a['target']}) {a['status']}: {a['output']}"
            for a in update.get("actions", [])
        )
    if node == "validate":
        v = update.get("validation") or {}
        return (
            ("healthy" if v.get("healthy") else "unhealthy")
            + ": "
            + "; ".join(c["summary"] for c in v.get("checks", []))
        )
    if node == "escalate":
        return f"{update.get('outcome')}: {update.get('escalation')}"
    if node == "learn":
        return f"outcome {update.get('outcome')}"
    return json.dumps(update, default=str)[:300]


def _ask(request: dict[str, Any], decision: str | None, approver: str) -> dict[str, Any]:
    plan = request.get("plan", {})
    console.print(f"[yellow]approval needed[/]: {request.get('why')}")
    for step in plan.get("steps", []):
        console.print(
            f"  - {step['operation']} {step['target']} ({step['risk']} risk): {step['rationale']}"
        )
    if decision is None:
        if not sys.stdin.isatty():
            console.print("[red]no terminal to ask on: pass --approve or --reject[/]")
            return {"decision": "reject", "approver": approver, "comment": "no terminal to ask on"}
        decision = "approve" if Confirm.ask("approve this plan?") else "reject"
        comment = Prompt.ask("comment", default="")
        return {"decision": decision, "approver": approver, "comment": comment}
    return {"decision": decision, "approver": approver, "comment": "decided on the command line"}


async def run_alert(
    settings: Settings, payload: WebhookPayload, decision: str | None, approver: str
) -> int:
    run_id = f"cli-{uuid.uuid4().hex[:12]}"
    alerts = [a.to_alert() for a in payload.alerts]
    console.print(f"run [bold]{run_id}[/] for {len(alerts)} alert(s)")
    async with open_agent(AgentContext.from_settings(settings)) as agent:
        resume: dict[str, Any] | None = None
        first = True
        while True:
            async for node, update in agent.stream(run_id, alerts if first else None, resume):
                if node == "__interrupt__":
                    continue
                console.print(f"[cyan]{node:>10}[/] {_summary(node, update or {})}")
            first = False
            request = await agent.pending_approval(run_id)
            if request is None:
                break
            resume = _ask(request, decision, approver)
        outcome = (await agent.state(run_id)).get("outcome")
    colour = "green" if outcome in SUCCESS_OUTCOMES else "red"
    console.print(f"[{colour}]outcome: {outcome}[/]")
    return 0 if outcome in SUCCESS_OUTCOMES else 1


def _read_payload(path: str) -> WebhookPayload:
    try:
        return WebhookPayload.model_validate(json.loads(Path(path).read_text()))
    except OSError as exc:
        raise SystemExit(f"error: cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise SystemExit(f"error: {path} is not JSON: {exc.msg} at line {exc.lineno}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise SystemExit(
            f"error: {path} is not an Alertmanager payload: {where}: {err['msg']}"
        ) from None


async def audit_verify(settings: Settings) -> int:
    """Walk the audit chain; exit 0 when intact, 1 at the first edited, missing or moved row."""
    ctx = AgentContext.from_settings(settings)
    try:
        result = await ctx.audit.verify()
    finally:
        await ctx.store.close()
    if result.ok:
        console.print(f"[green]audit trail intact[/]: {result.rows} rows, head {result.head[:16]}")
        return 0
    console.print(
        f"[red]audit trail broken[/]: {result.problem} ({result.rows} rows verified before it)"
    )
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devops-agent", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="start the HTTP service on API_HOST:API_PORT")
    run = sub.add_parser("run-alert", help="run one Alertmanager payload through the graph")
    run.add_argument("file", help="an Alertmanager webhook payload (JSON)")
    choice = run.add_mutually_exclusive_group()
    choice.add_argument("--approve", action="store_true", help="approve without asking")
    choice.add_argument("--reject", action="store_true", help="reject without asking")
    run.add_argument("--approver", default="cli", help="the name recorded with the decision")
    audit = sub.add_parser("audit", help="the audit trail")
    audit.add_argument("action", choices=["verify"], help="verify: check the hash chain")
    stack = sub.add_parser("stack", help="Prometheus and Alertmanager on loopback (demo intervals)")
    stack.add_argument("action", choices=["up", "down", "status"])
    stack.add_argument("--dir", type=Path, help="configs, data and PIDs (default DATA_DIR/stack)")
    stack.add_argument("--prometheus-port", type=int, default=9090)
    stack.add_argument("--alertmanager-port", type=int, default=9093)
    stack.add_argument(
        "--target", action="append", default=[], help="scrape name=host:port[/path] (repeatable)"
    )
    stack.add_argument("--with-agent", action="store_true", help="also start devops-agent serve")
    evaluate = sub.add_parser(
        "eval", help="run the fault scenarios against the agent and baselines"
    )
    evaluate.add_argument("--scenarios", type=Path, help="a directory of scenario YAML files")
    evaluate.add_argument("--only", help="comma-separated scenario ids")
    evaluate.add_argument("--report", type=Path, default=Path("eval-report"), help="output dir")
    evaluate.add_argument("--quick", action="store_true", help="the quick subset (CI)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        from devops_agent.server.main import serve

        return serve(settings)
    if args.command == "stack":
        from devops_agent.stack import command

        return command(
            settings,
            args.action,
            directory=args.dir,
            prometheus_port=args.prometheus_port,
            alertmanager_port=args.alertmanager_port,
            targets=args.target,
            with_agent=args.with_agent,
        )
    if args.command == "eval":
        from devops_agent.evaluation.runner import main as evaluate_main

        only = [i.strip() for i in args.only.split(",") if i.strip()] if args.only else None
        return evaluate_main(args.scenarios, only, args.report, args.quick)
    if args.command == "audit":
        return asyncio.run(audit_verify(settings))
    payload = _read_payload(args.file)
    decision = "approve" if args.approve else "reject" if args.reject else None
    return asyncio.run(run_alert(settings, payload, decision, args.approver))
