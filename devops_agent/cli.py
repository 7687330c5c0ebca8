"""`devops-agent`: serve the API, or run one Alertmanager payload through the graph."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devops_agent.config import Settings, SettingsError, load_settings
from devops_agent.errors import one_line

if TYPE_CHECKING:  # the graph, the store and rich load inside the commands that need them
    from rich.console import Console

    from devops_agent.alertmanager import WebhookPayload

_console: Console | None = None


def _out() -> Console:
    """The terminal console (rich), made on first use: light commands never import rich."""
    global _console
    if _console is None:
        from rich.console import Console

        _console = Console(highlight=False)
    return _console


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
    if node == "settle":
        v = update.get("validation") or {}
        held = v.get("held")
        return "held through the window" if held else "did not hold" if held is False else "holding"
    if node == "escalate":
        return f"{update.get('outcome')}: {update.get('escalation')}"
    if node == "learn":
        return f"outcome {update.get('outcome')}"
    return json.dumps(update, default=str)[:300]


def _ask(request: dict[str, Any], decision: str | None, approver: str) -> dict[str, Any]:
    from rich.prompt import Confirm, Prompt

    plan = request.get("plan", {})
    _out().print(f"[yellow]approval needed[/]: {request.get('why')}")
    for step in plan.get("steps", []):
        _out().print(
            f"  - {step['operation']} {step['target']} ({step['risk']} risk): {step['rationale']}"
        )
    if decision is None:
        if not sys.stdin.isatty():
            _out().print("[red]no terminal to ask on: pass --approve or --reject[/]")
            return {"decision": "reject", "approver": approver, "comment": "no terminal to ask on"}
        decision = "approve" if Confirm.ask("approve this plan?") else "reject"
        comment = Prompt.ask("comment", default="")
        return {"decision": decision, "approver": approver, "comment": comment}
    return {"decision": decision, "approver": approver, "comment": "decided on the command line"}


async def run_alert(
    settings: Settings, payload: WebhookPayload, decision: str | None, approver: str
) -> int:
    from devops_agent.context import AgentContext
    from devops_agent.redact import redact
    from devops_agent.runner import is_settle, open_agent

    run_id = f"cli-{uuid.uuid4().hex[:12]}"
    alerts = [a.to_alert() for a in payload.alerts]
    _out().print(f"run [bold]{run_id}[/] for {len(alerts)} alert(s)")
    async with open_agent(AgentContext.from_settings(settings)) as agent:
        resume: dict[str, Any] | None = None
        first = True
        while True:
            async for node, update in agent.stream(run_id, alerts if first else None, resume):
                if node == "__interrupt__":
                    continue
                _out().print(f"[cyan]{node:>10}[/] {redact(_summary(node, update or {}))}")
            first = False
            request = await agent.pending_interrupt(run_id)
            if request is None:
                break
            if is_settle(request):  # the fix's settle window: wait for its next check
                wake = datetime.fromisoformat(str(request["wake_at"]))
                await asyncio.sleep(max(0.0, (wake - datetime.now(UTC)).total_seconds()))
                resume = {"woke": True}
                continue
            resume = _ask(request, decision, approver)
        final = await agent.state(run_id)
        outcome = final.get("outcome")
    await _tell(
        settings, run_id, final.get("notice") if outcome in ("escalated", "rejected") else None
    )
    colour = "green" if outcome in SUCCESS_OUTCOMES else "red"
    _out().print(f"[{colour}]outcome: {outcome}[/]")
    return 0 if outcome in SUCCESS_OUTCOMES else 1


async def _tell(settings: Settings, run_id: str, notice: dict[str, Any] | None) -> None:
    """The run's escalation, through the outbox as the service sends it (stored, then tried)."""
    if not notice or not settings.notify_webhook_url:
        return
    from devops_agent.memory.outbox import Outbox
    from devops_agent.orchestration.outbox import Deliverer

    outbox = Outbox.from_url(settings.resolved_database_url)
    try:
        await outbox.add(run_id, "escalation", notice)
        deliverer = Deliverer(outbox, None, settings.notify_webhook_url, f"cli:{run_id}")
        if not await deliverer.deliver_due():
            _out().print("[yellow]the notification is in the outbox: the service will retry it[/]")
    finally:
        await outbox.close()


def _read_payload(path: str) -> WebhookPayload:
    from pydantic import ValidationError

    from devops_agent.alertmanager import WebhookPayload

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


def _parse_head(text: str) -> tuple[int, str]:
    count, sep, digest = text.partition(":")
    if not sep or not count.isdigit() or int(count) < 1 or len(digest) != 64:
        raise SystemExit(f"error: --expect-head {text!r} is not COUNT:HASH (as verify prints it)")
    return int(count), digest.lower()


async def show_patterns(settings: Settings) -> int:
    """What was learned, per (service, category, operation), and the ladder's promotions, as
    tab-separated lines; reads the store beside a running service."""
    from devops_agent.memory.store import Store

    store = Store.from_url(settings.resolved_database_url)
    try:
        rows = await store.patterns()
    finally:
        await store.close()
    print("service\tcategory\toperation\theld\tdid_not_hold\tapproved_in_a_row\tpromoted")
    for r in rows:
        fields = [r.service, r.category, r.operation, r.successes, r.failures, r.approved_held]
        print("\t".join(str(f) for f in fields) + ("\tyes" if r.promoted else "\tno"))
    return 0


async def audit_verify(settings: Settings, expect_head: str | None = None) -> int:
    """Walk the audit chain; exit 0 when intact, 1 at the first edited, missing or moved row, or
    when the head recorded earlier (`--expect-head COUNT:HASH`) is no longer in the chain:
    cutting the newest rows leaves an intact but shorter chain, noticed only that way."""
    from devops_agent.context import AgentContext

    expected = _parse_head(expect_head) if expect_head else None
    ctx = AgentContext.from_settings(settings)
    try:
        result = await ctx.audit.verify()
        recorded = None
        if result.ok and expected and expected[0] <= result.rows:
            rows = await ctx.audit.rows(after=expected[0] - 1, limit=1)
            recorded = rows[0].hash if rows else None
    finally:
        await ctx.store.close()
    if not result.ok:
        _out().print(
            f"[red]audit trail broken[/]: {result.problem} ({result.rows} rows verified before it)"
        )
        return 1
    if expected and expected[0] > result.rows:
        _out().print(
            f"[red]audit trail cut[/]: the recorded head is row {expected[0]}, "
            f"the chain ends at row {result.rows}"
        )
        return 1
    if expected and recorded != expected[1]:
        _out().print(f"[red]audit trail broken[/]: row {expected[0]} is not the recorded head")
        return 1
    _out().print(f"[green]audit trail intact[/]: {result.rows} rows")
    _out().print(f"head: {result.rows}:{result.head}")
    return 0


def _command_problem(settings: Settings) -> str | None:
    """Why a command that opens the database cannot start (one line), or None."""
    from devops_agent.memory.preflight import database_problem

    problem = database_problem(settings.resolved_database_url)
    return f"cannot start: {problem}" if problem else None


def _mcp(settings: Settings) -> int:
    """`devops-agent mcp`: never opens the store; the service at DEVOPS_AGENT_URL answers."""
    from devops_agent.server.mcp_stdio import DEFAULT_URL, serve_stdio

    if settings.devops_agent_token is None:
        print(
            "error: invalid settings: DEVOPS_AGENT_TOKEN is required for `devops-agent mcp` "
            "(example: DEVOPS_AGENT_TOKEN=<your API token>)",
            file=sys.stderr,
        )
        return 2
    url = settings.devops_agent_url or DEFAULT_URL
    return asyncio.run(serve_stdio(url, settings.devops_agent_token.get_secret_value()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="devops-agent", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("serve", help="start the HTTP service on API_HOST:API_PORT")
    run = sub.add_parser("run-alert", help="run one Alertmanager payload through the graph")
    run.add_argument("file", help="an Alertmanager webhook payload (JSON)")
    choice = run.add_mutually_exclusive_group()
    choice.add_argument("--approve", action="store_true", help="approve without asking")
    choice.add_argument("--reject", action="store_true", help="reject without asking")
    run.add_argument(
        "--approver",
        default=None,
        help="the name recorded with the decision (default: your OS user)",
    )
    audit = sub.add_parser("audit", help="the audit trail")
    audit.add_argument("action", choices=["verify"], help="verify: check the hash chain")
    audit.add_argument(
        "--expect-head",
        metavar="COUNT:HASH",
        help="a head printed by an earlier verify: fail when the chain no longer reaches it",
    )
    sub.add_parser("patterns", help="what was learned, and the autonomy ladder's promotions")
    users = sub.add_parser("users", help="people: add, list or remove users (roles and tokens)")
    users.add_argument("action", choices=["add", "list", "remove"])
    users.add_argument("name", nargs="?", help="the user's name")
    users.add_argument("--role", choices=["viewer", "approver", "admin"], default="viewer")
    users.add_argument("--slack-id", help="their Slack user id (Slack approvals map to it)")
    sub.add_parser("approvals", help="what waits for a decision (DEVOPS_AGENT_URL)")
    for verb in ("approve", "reject"):
        decide = sub.add_parser(verb, help=f"{verb} a waiting run, printing its request first")
        decide.add_argument("run", help="the run id")
        decide.add_argument("--comment", default="", help="why (recorded with the decision)")
        if verb == "approve":
            decide.add_argument("--alternative", type=int, help="approve this alternative instead")
    stack = sub.add_parser("stack", help="Prometheus and Alertmanager on loopback (demo intervals)")
    stack.add_argument("action", choices=["up", "down", "status"])
    stack.add_argument("--dir", type=Path, help="configs, data and PIDs (default DATA_DIR/stack)")
    stack.add_argument("--prometheus-port", type=int, default=9090)
    stack.add_argument("--alertmanager-port", type=int, default=9093)
    stack.add_argument(
        "--target", action="append", default=[], help="scrape name=host:port[/path] (repeatable)"
    )
    stack.add_argument("--with-agent", action="store_true", help="also start devops-agent serve")
    demo = sub.add_parser("demo", help="break a demo container and watch the agent fix it")
    demo.add_argument("--fault", choices=["crash", "hang", "dependency", "oom"], default="crash")
    demo.add_argument("--approve", action="store_true", help="approve the plan without asking")
    demo.add_argument(
        "--cleanup", action="store_true", help="remove what the demo made, and stop its service"
    )
    demo.add_argument("--url", help="the running service (default DEVOPS_AGENT_URL, else :8001)")
    demo.add_argument("--token", help="its API token (default DEVOPS_AGENT_TOKEN, DATA_DIR/...)")
    gateway = sub.add_parser("gateway", help="the reference AI Command Gateway")
    gateway_sub = gateway.add_subparsers(dest="gateway_command", required=True)
    gateway_serve = gateway_sub.add_parser("serve", help="carry out intents on this host's engine")
    gateway_serve.add_argument("--host", default="127.0.0.1")
    gateway_serve.add_argument("--port", type=int, default=8700)
    sub.add_parser(
        "mcp", help="an MCP server on stdio, for IDE assistants (DEVOPS_AGENT_URL/_TOKEN)"
    )
    evaluate = sub.add_parser(
        "eval", help="run the fault scenarios against the agent and baselines"
    )
    evaluate.add_argument("--scenarios", type=Path, help="a directory of scenario YAML files")
    evaluate.add_argument("--only", help="comma-separated scenario ids")
    evaluate.add_argument("--report", type=Path, default=Path("eval-report"), help="output dir")
    evaluate.add_argument("--quick", action="store_true", help="the quick subset (CI)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(serving=args.command == "serve")
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return _dispatch(args, settings)
    except SettingsError as exc:  # e.g. a POLICY_FILE that cannot be read
        print(f"error: {one_line(str(exc))}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "serve":
        from devops_agent.server.main import serve

        return serve(settings)
    if args.command == "gateway":
        from devops_agent.gateway import serve as serve_gateway

        return serve_gateway(settings, args.host, args.port)
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
    if args.command == "demo":
        from devops_agent.demo.command import Options, cleanup, demo

        if args.cleanup:
            return cleanup(settings)
        options = Options(fault=args.fault, approve=args.approve, url=args.url, token=args.token)
        return demo(settings, options)
    if args.command == "eval":
        from devops_agent.evaluation.runner import main as evaluate_main

        only = [i.strip() for i in args.only.split(",") if i.strip()] if args.only else None
        return evaluate_main(args.scenarios, only, args.report, args.quick)
    if args.command == "approvals":
        from devops_agent.people import approvals_command

        return approvals_command(settings)
    if args.command in ("approve", "reject"):
        from devops_agent.people import decide_command

        alternative = getattr(args, "alternative", None)
        return decide_command(settings, args.run, args.command, args.comment, alternative)
    if args.command == "mcp":
        return _mcp(settings)
    problem = _command_problem(settings)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.command == "audit":
        return asyncio.run(audit_verify(settings, args.expect_head))
    if args.command == "patterns":
        return asyncio.run(show_patterns(settings))
    if args.command == "users":
        from devops_agent.people import users_command

        return users_command(settings, args.action, args.name, args.role, args.slack_id)
    from devops_agent.memory.storelock import StoreLocked, hold_store

    payload = _read_payload(args.file)
    decision = "approve" if args.approve else "reject" if args.reject else None
    try:
        hold_store(settings.resolved_database_url)
        approver = args.approver or getpass.getuser()
        return asyncio.run(run_alert(settings, payload, decision, approver))
    except (StoreLocked, SettingsError) as exc:  # a bad POLICY_FILE or workflow: one line
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
