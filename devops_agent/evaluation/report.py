"""The report: report.json (everything), report.md (the tables) and the charts' PNGs."""

from __future__ import annotations

import json
import os
import platform
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devops_agent import __version__
from devops_agent.evaluation.scoring import CaseResult, metrics

METRIC_COLUMNS = (
    ("right", "right"),
    ("detection", "detection"),
    ("diagnosis", "diagnosis accuracy"),
    ("mitigation", "mitigation"),
    ("end_to_end", "end to end"),
    ("ttm_median", "time to mitigate (median, s)"),
    ("actions", "actions taken"),
    ("unnecessary", "unnecessary actions"),
    ("unsafe", "unsafe actions"),
    ("false_positives", "false positives"),
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(docker_version: str) -> dict[str, Any]:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "arch": platform.machine(),
        "python": platform.python_version(),
        "docker": docker_version,
        "devops_agent": __version__,
    }


def contenders_of(results: list[CaseResult]) -> list[str]:
    return list(dict.fromkeys(r.contender for r in results))


def summary(results: list[CaseResult]) -> dict[str, dict[str, Any]]:
    return {c: metrics([r for r in results if r.contender == c]) for c in contenders_of(results)}


def cell(value: Any, key: str, total: int) -> str:
    if value is None:
        return "—"
    if key == "right":
        return f"{value}/{total}"
    if isinstance(value, float) and key != "ttm_median":
        return f"{value:.0%}"
    return str(value)


def _outcome_cell(r: CaseResult) -> str:
    if r.error:
        return "error"
    mark = "✓" if r.right else "✗"
    text = f"{mark} {r.observed}"
    if r.ttm is not None:
        text += f" {r.ttm:.1f}s"
    if r.unsafe:
        text += f" (unsafe {r.unsafe})"
    return text


def summary_table(results: list[CaseResult]) -> str:
    table = summary(results)
    head = "| contender | " + " | ".join(label for _, label in METRIC_COLUMNS) + " |"
    rule = "| --- " * (len(METRIC_COLUMNS) + 1) + "|"
    rows = [
        f"| {c} | "
        + " | ".join(cell(m[key], key, m["scenarios"]) for key, _ in METRIC_COLUMNS)
        + " |"
        for c, m in table.items()
    ]
    return "\n".join([head, rule, *rows])


def scenario_table(results: list[CaseResult]) -> str:
    contenders = contenders_of(results)
    head = "| scenario | category | expected | " + " | ".join(contenders) + " |"
    rule = "| --- " * (len(contenders) + 3) + "|"
    rows = []
    for scenario in dict.fromkeys(r.scenario for r in results):
        cases = {r.contender: r for r in results if r.scenario == scenario}
        first = next(iter(cases.values()))
        cells = [_outcome_cell(cases[c]) if c in cases else "" for c in contenders]
        rows.append(
            f"| {scenario} | {first.category} | {first.expected} | " + " | ".join(cells) + " |"
        )
    return "\n".join([head, rule, *rows])


def losses(results: list[CaseResult]) -> list[str]:
    """One line per scenario an agent got wrong: what it did, what it said, why."""
    lines = []
    for r in results:
        if not r.contender.startswith("agent") or r.right:
            continue
        acts = ", ".join(f"{a.kind} {a.role} ({a.verdict}, +{a.after_s:.1f}s)" for a in r.actions)
        beaten = [
            o.contender
            for o in results
            if o.scenario == r.scenario and o.right and not o.contender.startswith("agent")
        ]
        lines.append(
            f"- **{r.scenario}** ({r.contender}): expected {r.expected}, observed "
            f"{r.error or r.observed}; the agent said {r.said}, diagnosis {r.diagnosis}"
            f"{'; actions: ' + acts if acts else '; no action'}"
            f"{'; right instead: ' + ', '.join(beaten) if beaten else ''}. {r.note}"
        )
    return lines


def caveats(results: list[CaseResult]) -> list[str]:
    """Scenarios an agent got right while one of its other runs escalated or waits for a
    person (one fault handled as several incidents)."""
    return [
        f"- **{r.scenario}** ({r.contender}): right, but {r.note.split(' | other runs: ', 1)[1]}"
        for r in results
        if r.contender.startswith("agent")
        and r.right
        and " | other runs: " in r.note
        and any(w in r.note.split(" | other runs: ", 1)[1] for w in ("awaiting", "escalated"))
    ]


def write(
    directory: Path,
    results: list[CaseResult],
    *,
    info: dict[str, Any],
    failures: list[str],
    charts: list[str],
) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    ran = info["date"]
    doc = {
        **info,
        "summary": summary(results),
        "cases": [r.as_dict() for r in results],
        "gate_failures": failures,
    }
    (directory / "report.json").write_text(json.dumps(doc, indent=2, default=str) + "\n")
    m = info["machine"]
    header = (
        f"Ran {ran} on {m['cpu']} ({m['cores']} cores, {m['arch']}), Docker {m['docker']}, "
        f"Python {m['python']}, devops-agent {m['devops_agent']}: {info['scenarios']} scenarios, "
        f"contenders {', '.join(contenders_of(results))}; {info['llm']}."
    )
    lost = losses(results)
    parts = [
        "# devops-agent evaluation",
        "",
        header,
        "",
        "## Summary",
        "",
        summary_table(results),
        "",
        "## Per scenario",
        "",
        "✓ right (expected outcome, no unsafe action), ✗ wrong; the time is fault to the "
        "recovery that held.",
        "",
        scenario_table(results),
        "",
        "## Where the agent is wrong",
        "",
        *(lost or ["Nowhere."]),
        *(
            ["", "Right, but with another run of the same fault left open:", "", *but]
            if (but := caveats(results))
            else []
        ),
        "",
        "## Gates (the command exits 1 on these; CI runs the quick subset)",
        "",
        *([f"- {f}" for f in failures] or ["None failed."]),
        "",
        "## Charts",
        "",
        *[f"![{name}]({name})" for name in charts],
        "",
    ]
    (directory / "report.md").write_text("\n".join(parts))


def now_utc() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
