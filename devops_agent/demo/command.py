"""`devops-agent demo [--fault crash|hang|dependency|oom] [--approve] [--cleanup]`.

Builds the demo image, starts a demo service, breaks it, sends the Alertmanager notification to
the running service (starting one in the background when none answers), prints the approval
request and how to decide it, and on `--approve` (or a `y` at the prompt) decides it and follows
the run to its end, one line per node. Exit 0 when the run ends resolved; 1 when it ends
otherwise (or is left waiting for a person); 2 when the demo cannot run.
"""

from __future__ import annotations

import getpass
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devops_agent.config import Settings
from devops_agent.demo import faults, service
from devops_agent.demo.client import AgentClient, alert_payload
from devops_agent.demo.image import IMAGE, DemoError, ensure_image, remove_image
from devops_agent.demo.view import console, errors, show_how_to_decide, show_node, show_request

DEFAULT_URL = "http://127.0.0.1:8001"
FOLLOW_TIMEOUT = 600.0  # seconds the demo follows one stretch of a run before giving up
WAITING, COMPLETED, FAILED = "awaiting_approval", "completed", "failed"


@dataclass(frozen=True)
class Options:
    fault: str = "crash"
    approve: bool = False
    url: str | None = None
    token: str | None = None


@dataclass(frozen=True)
class Token:
    """An API token, and how a shell line refers to it without showing it."""

    value: str
    shell: str


def resolve_token(
    settings: Settings, given: str | None, background: service.Background | None
) -> Token:
    """--token, DEVOPS_AGENT_TOKEN, the token of the service the demo started, AGENT_API_TOKEN,
    then DATA_DIR/api-token (where a service on this DATA_DIR generated it)."""
    if given:
        return Token(given, "<the token given with --token>")
    if settings.devops_agent_token is not None:
        return Token(settings.devops_agent_token.get_secret_value(), "$DEVOPS_AGENT_TOKEN")
    files: list[Path] = [background.token_file] if background else []
    if not background and settings.agent_api_token is not None:
        return Token(settings.agent_api_token.get_secret_value(), "$AGENT_API_TOKEN")
    files.append(Path(settings.data_dir) / service.TOKEN_FILE)
    for path in files:
        try:
            value = path.read_text().strip()
        except OSError:
            continue
        if value:
            return Token(value, f"$(cat {path.resolve()})")
    raise DemoError(
        "no API token: pass --token, set DEVOPS_AGENT_TOKEN (the service's AGENT_API_TOKEN), "
        "or run the demo with the service's DATA_DIR (it reads DATA_DIR/api-token)"
    )


def _service(settings: Settings, url: str) -> service.Background | None:
    """The service at `url`: the one already answering, or one started now in the background."""
    background = service.recorded(settings)
    if background is not None and background.url != url:
        background = None
    if service.answers(url):
        return background
    console.print(f"no service answers at {url}: starting one on the embedded defaults ...")
    background = service.start(settings, url)
    console.print(
        f"started [bold]devops-agent serve[/] in the background (pid {background.pid}, "
        f"DATA_DIR {background.data_dir}, log {background.log}); "
        "`devops-agent demo --cleanup` stops it"
    )
    return background


def _follow(
    agent: AgentClient, run_id: str, decision: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """Print the run's nodes as they finish until it waits for a person or ends; (status, the
    approval request or the end event). With `decision`, it is sent once the stream is open,
    so that no node of what follows is missed."""
    deadline = time.monotonic() + FOLLOW_TIMEOUT
    request: dict[str, Any] = {}
    first = True
    shown: set[str] = set()  # nodes shown from the history, whose update may still come
    for event in agent.events(run_id):
        if event.name == "state" and first:
            first = False
            if decision is not None:  # the stream is open: nothing that follows is missed
                agent.decide(run_id, **decision)
                continue
            for node in agent.nodes_done(run_id):  # finished before the stream opened
                if node == "await_approval" and event.data.get("status") == WAITING:
                    continue  # it is the one waiting
                show_node(node, _known(node, event.data))
                shown.add(node)
        if event.name == "state" and event.data.get("status") in (WAITING, FAILED):
            # The row says so (a later `state` comes when the `status` event was lost).
            return str(event.data["status"]), request
        if event.name == "update":
            node = str(event.data.get("node"))
            if node in shown:
                shown.discard(node)
                continue
            show_node(node, event.data.get("update") or {})
        elif event.name == "interrupt":
            requests = event.data.get("requests") or [{}]
            first_request = requests[0] if isinstance(requests[0], dict) else {}
            if first_request.get("kind") != "settle":  # a settle window's park is no question
                request = first_request
        elif event.name == "status" and event.data.get("status") == WAITING:
            return WAITING, request
        elif event.name == "end":
            return str(event.data.get("status")), event.data
        if time.monotonic() > deadline:
            raise DemoError(
                f"run {run_id} went on for {FOLLOW_TIMEOUT:.0f}s: follow it with GET /runs/{run_id}"
            )
    raise DemoError(f"the event stream closed before run {run_id} ended: see GET /runs/{run_id}")


def _known(node: str, run: dict[str, Any]) -> dict[str, Any]:
    """What the run's view says of a node that finished before the demo could watch it."""
    if node == "triage":
        return {
            "triage": {"reason": f"{len(run.get('alerts') or [])} alert(s) for {run['service']}"}
        }
    if node == "root_cause":
        return {"diagnosis": run.get("diagnosis") or {}}
    if node == "plan":
        return {"plan": run.get("plan") or {}}
    if node == "approve" and run.get("status") == WAITING:
        return {"approval_request": {"why": "(below)"}}
    return {"done": True}


def _ask() -> bool:
    """A `y` at the prompt (only when there is a terminal to ask on)."""
    if not sys.stdin.isatty():
        return False
    try:
        return input("approve this plan? [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def _drive(
    agent: AgentClient, run_id: str, options: Options, url: str, token: Token, console_url: str
) -> int:
    """From the alert to the end of the run (or to a request left for a person)."""
    status, found = _follow(agent, run_id)
    while status == WAITING:
        request = agent.approval_request(run_id) or found
        show_request(run_id, request)
        show_how_to_decide(url, run_id, token.shell, console_url or None)
        if not (options.approve or _ask()):
            console.print(f"\nrun {run_id} waits for your decision (until its deadline)")
            return 1
        decision = {
            "decision": "approve",
            "approver": getpass.getuser() or "demo",
            "request_id": request.get("request_id"),
        }
        console.print("\n[green]approved[/]: following the run")
        status, found = _follow(agent, run_id, decision)
    run = agent.run(run_id)
    outcome = run.get("outcome")
    if status == FAILED:
        errors.print(f"[red]run {run_id} failed[/]: {run.get('error')}")
        return 1
    colour = "green" if outcome == "resolved" else "red"
    console.print(f"\n[{colour}]outcome: {outcome}[/]")
    return 0 if outcome == "resolved" else 1


def demo(settings: Settings, options: Options) -> int:
    """The whole demo; the exit code."""
    if options.fault not in faults.FAULTS:
        errors.print(f"error: unknown fault {options.fault!r}: one of {', '.join(faults.FAULTS)}")
        return 2
    try:
        return _demo(settings, options)
    except DemoError as exc:
        errors.print(f"error: {exc}")
        return 2


def _demo(settings: Settings, options: Options) -> int:
    url = (options.url or settings.devops_agent_url or DEFAULT_URL).rstrip("/")
    client = faults.docker_client(settings)
    background = _service(settings, url)
    token = resolve_token(settings, options.token, background)
    webhook_token = None if background else settings.webhook_token
    agent = AgentClient(
        url, token.value, webhook_token.get_secret_value() if webhook_token else None
    )
    try:
        agent.status()  # the token is right before anything is started
        console_url = f"{url}/ui" if agent.has_console() else ""
        if ensure_image(client):
            console.print(f"made the demo image from the host's busybox ({IMAGE})")
        target = faults.start(client, options.fault)
        depends = f", which needs {target.dependency}" if target.dependency else ""
        console.print(f"started [bold]{target.name}[/]{depends}: healthy at {target.health_url}")
        faults.break_service(client, target, options.fault)
        console.print(f"broke it ({options.fault}): {faults.FAULTS[options.fault][1]}")
        run_id = agent.send_alert(alert_payload(target.name))
        console.print(
            f"sent Alertmanager's notification (ServiceDown, service={target.name}) to "
            f"{url}/webhook/alerts: run [bold]{run_id}[/]"
        )
        code = _drive(agent, run_id, options, url, token, console_url)
        if code == 0:
            healthy = faults.probe(target.health_url) == 200
            console.print(
                f"{target.name} answers {target.health_url}: "
                + ("[green]200, healthy again[/]" if healthy else "[red]not healthy[/]")
            )
        console.print("remove what the demo made: devops-agent demo --cleanup")
        return code
    finally:
        agent.close()


def cleanup(settings: Settings) -> int:
    """Remove the demo's containers and image, and stop the service it started."""
    stopped = service.stop(settings)
    service.forget(settings)
    if stopped:
        console.print(f"stopped the background service (pid {stopped.pid}, {stopped.url})")
    try:
        client = faults.docker_client(settings)
    except DemoError as exc:
        errors.print(f"error: {exc}")
        return 2
    removed = faults.remove_containers(client)
    console.print(
        f"removed {len(removed)} container(s){': ' + ', '.join(removed) if removed else ''}"
    )
    if remove_image(client):
        console.print(f"removed the image {IMAGE}")
    return 0
