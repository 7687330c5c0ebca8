"""`devops-agent eval`: run the suite, every contender on every scenario, and write the report.

Exit codes: 0 when the agent took no unsafe action and no baseline beat it on any scenario
run, 1 when it did (or a case could not be run), 2 for a wrong scenario file or no Docker
engine, 130 when interrupted. Whatever happens, every container the run made is removed.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import docker
import docker.errors
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from devops_agent.evaluation import charts, image, report
from devops_agent.evaluation.agent import Agent, AgentServer, llm_endpoint
from devops_agent.evaluation.baselines import BASELINES, Contender
from devops_agent.evaluation.cases import run_case
from devops_agent.evaluation.scenario import Scenario, ScenarioError, load_dir, select
from devops_agent.evaluation.scoring import CaseResult, gate_failures
from devops_agent.evaluation.world import LABEL_RUN, remove_labelled

console = Console(highlight=False, stderr=True)
AGENT = "agent (rules)"


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """SIGTERM ends the run like Ctrl-C: through the clean-up."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_all(
    client: docker.DockerClient,
    scenarios: list[Scenario],
    contenders: list[Contender],
    run_id: str,
) -> list[CaseResult]:
    results: list[CaseResult] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task("eval", total=len(scenarios) * len(contenders))
        for scenario in scenarios:
            for contender in contenders:
                progress.update(task, description=f"{scenario.id} · {contender.name}")
                result = run_case(client, scenario, contender, run_id)
                results.append(result)
                if result.error:
                    progress.console.print(f"[red]{scenario.id} · {contender.name}: {result.error}")
                progress.advance(task)
    return results


def print_summary(results: list[CaseResult]) -> None:
    """The summary as a Markdown table: readable in a terminal of any width and in CI logs."""
    print(report.summary_table(results))


def main(scenarios_dir: Path | None, only: list[str] | None, report_dir: Path, quick: bool) -> int:
    try:
        chosen = select(load_dir(scenarios_dir), only, quick)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)  # one line, never wrapped
        return 2
    try:
        client = docker.from_env(timeout=60)
        client.ping()
        docker_version = str(client.version().get("Version", "?"))
    except docker.errors.DockerException as exc:
        print(f"error: the evaluation needs a Docker engine: {exc}", file=sys.stderr)
        return 2
    run_id = secrets.token_hex(4)
    workdir = Path(tempfile.mkdtemp(prefix="devops-agent-eval-"))
    servers: list[AgentServer] = []
    llm_note = "REASONER=llm not scored: "
    try:
        with sigterm_interrupts():
            image.ensure_image(client)
            servers.append(AgentServer(workdir / "rules", "rules").start())
            why_not = llm_endpoint()
            if why_not is None:
                servers.append(AgentServer(workdir / "llm", "llm").start())
                llm_note = "REASONER=llm scored against the endpoint at OPENAI_BASE_URL"
            else:
                llm_note += why_not
            contenders: list[Contender] = [Agent(s) for s in servers]
            contenders += [baseline() for baseline in BASELINES]
            console.print(
                f"{len(chosen)} scenarios × {len(contenders)} contenders (run {run_id}); {llm_note}"
            )
            results = run_all(client, chosen, contenders, run_id)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: removing the evaluation's containers")
        return 130
    finally:
        for server in servers:
            server.stop()
            _keep_log(server, report_dir)
        remove_labelled(client, f"{LABEL_RUN}={run_id}")
        shutil.rmtree(workdir, ignore_errors=True)
    failures = gate_failures(results, AGENT)
    report_dir.mkdir(parents=True, exist_ok=True)
    drawn = charts.write(report_dir, results)
    info = {
        "date": report.now_utc(),
        "machine": report.machine(docker_version),
        "scenarios": len(chosen),
        "quick": quick,
        "llm": llm_note,
        "run_id": run_id,
    }
    report.write(report_dir, results, info=info, failures=failures, charts=drawn)
    print_summary(results)
    console.print(f"report: {report_dir / 'report.md'}")
    for failure in failures:
        console.print(f"[red]gate: {failure}")
    failed = {f.split(":", 1)[0] for f in failures}
    print(f"eval: {len(chosen) - len(failed)} passed, {len(failed)} failed")
    return 1 if failures else 0


def _keep_log(server: AgentServer, report_dir: Path) -> None:
    """The agent's own log beside the report, for reading why it did what it did."""
    if server.log_path.exists():
        report_dir.mkdir(parents=True, exist_ok=True)
        target = report_dir / f"agent-{server.reasoner}.log"
        target.write_bytes(server.log_path.read_bytes())
