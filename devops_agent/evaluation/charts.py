"""PNG charts of a suite's results (matplotlib, no display needed)."""

from __future__ import annotations

import statistics
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from devops_agent.evaluation.scoring import CaseResult  # noqa: E402

OUTCOMES = ("mitigated", "escalated", "no_action", "failed", "error")
COLOURS = {
    "mitigated": "#2e7d32",
    "escalated": "#1565c0",
    "no_action": "#9e9e9e",
    "failed": "#c62828",
    "error": "#000000",
}


def _grouped(
    path: Path,
    title: str,
    ylabel: str,
    groups: list[str],
    series: dict[str, list[float]],
) -> None:
    fig, ax = plt.subplots(figsize=(max(8.0, len(groups) * 1.1), 4.5))
    width = 0.8 / max(len(series), 1)
    for i, (name, values) in enumerate(series.items()):
        xs = [g + i * width - 0.4 + width / 2 for g in range(len(groups))]
        ax.bar(xs, values, width, label=name)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels(groups, rotation=30, ha="right")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(directory: Path, results: list[CaseResult]) -> list[str]:
    """Write the charts; returns their file names."""
    contenders = list(dict.fromkeys(r.contender for r in results))
    categories = list(dict.fromkeys(r.category for r in results))

    def cases(contender: str, category: str) -> list[CaseResult]:
        return [r for r in results if r.contender == contender and r.category == category]

    right = {
        c: [sum(r.right for r in cases(c, cat)) / max(len(cases(c, cat)), 1) for cat in categories]
        for c in contenders
    }
    _grouped(
        directory / "right_by_category.png",
        "Right (expected outcome, no unsafe action), share per category",
        "share of scenarios",
        categories,
        right,
    )
    ttm = {
        c: [
            statistics.median(times) if (times := [r.ttm for r in cases(c, cat) if r.ttm]) else 0.0
            for cat in categories
        ]
        for c in contenders
    }
    _grouped(
        directory / "ttm_by_category.png",
        "Time to mitigate (median where mitigation was expected and reached; 0: none)",
        "seconds from the fault",
        categories,
        ttm,
    )
    fig, ax = plt.subplots(figsize=(8.0, 4.5))
    bottoms = [0.0] * len(contenders)
    for outcome in OUTCOMES:
        counts = [
            float(sum(r.observed == outcome for r in results if r.contender == c))
            for c in contenders
        ]
        ax.bar(contenders, counts, bottom=bottoms, label=outcome, color=COLOURS[outcome])
        bottoms = [b + n for b, n in zip(bottoms, counts, strict=True)]
    ax.set_title("Observed outcomes per contender")
    ax.set_ylabel("scenarios")
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))
    plt.setp(ax.get_xticklabels(), rotation=20, ha="right")
    fig.tight_layout()
    fig.savefig(directory / "outcomes.png", dpi=110)
    plt.close(fig)
    return ["right_by_category.png", "ttm_by_category.png", "outcomes.png"]
