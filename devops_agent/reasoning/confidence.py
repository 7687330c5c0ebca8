"""The confidence of an LLM diagnosis, bounded by the evidence.

A model's own confidence says little (Kubernaut's averaged 0.93 across its evaluation, so a 0.8
threshold filtered nothing). Here it is only an upper bound: the final figure is capped by what
the gathered facts support. The cap is the rules reasoner's confidence when both agree on the
category, lower when they disagree, lower still when the category contradicts the container
facts (a crash claimed while every container runs), and it shrinks with the share of cited
evidence that does not appear in the data the agent actually gathered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

from devops_agent.reasoning import rules
from devops_agent.reasoning.answers import DiagnosisAnswer
from devops_agent.reasoning.base import Investigation

Support = Literal["consistent", "unsupported", "contradicts"]
DISAGREE_CAP = 0.6  # the model and the rules name different categories
UNSUPPORTED_CAP = 0.5  # nothing in the facts points at the claimed category
CONTRADICTED_CAP = 0.3  # the facts rule the claimed category out
TOKEN_COVERAGE = 0.8  # share of a citation's words that must appear in the data
MIN_TOKENS = 3
_WORDS = re.compile(r"[a-z0-9]+")
_SPACES = re.compile(r"\s+")


@dataclass
class Calibrated:
    confidence: float
    evidence: list[str]
    notes: list[str] = field(default_factory=list)


def _normal(text: str) -> str:
    return _SPACES.sub(" ", text.lower()).strip().strip("'\"`.").strip()


class Corpus:
    """Everything gathered about the incident, for checking what the model cites."""

    def __init__(self, case: Investigation, extra: Iterable[str] = ()) -> None:
        parts = [e.summary for e in case.evidence]
        parts += [json.dumps(e.data, default=str, ensure_ascii=False) for e in case.evidence]
        for e in case.evidence:  # log lines as plain text too (JSON escapes quotes)
            parts += [str(x) for x in e.data.get("error_lines", []) + e.data.get("tail", [])]
        parts += list(extra)
        self.text = _normal("\n".join(parts))
        self.words = set(_WORDS.findall(self.text))

    def grounds(self, claim: str) -> bool:
        needle = _normal(claim)
        if not needle:
            return False
        if needle in self.text:
            return True
        words = _WORDS.findall(needle)
        if len(words) < MIN_TOKENS:
            return False
        return sum(w in self.words for w in words) / len(words) >= TOKEN_COVERAGE


def fact_check(category: str, case: Investigation) -> tuple[Support, str]:
    """Whether the container facts allow the category at all."""
    if category == "unknown":
        return "consistent", ""
    health = case.find("health_check")
    containers = health.data.get("containers", []) if health and health.ok else []
    if not containers:
        return "unsupported", "no container facts were gathered"
    down = any(not c.get("running") and not c.get("paused") for c in containers)
    paused = any(c.get("paused") for c in containers)
    running = any(c.get("running") for c in containers)
    probe = (health.data.get("probe") or {}) if health else {}
    logs = case.find("get_logs")
    text = json.dumps(logs.data if logs else {}).lower() + str(probe.get("summary", "")).lower()
    resources = case.find("check_resources")
    usage = resources.data.get("containers", []) if resources and resources.ok else []
    deps_down = any(
        e.source == "dependency" and not e.data.get("healthy", True) for e in case.evidence
    )
    if category in ("crash", "crash_loop", "config_error") and not down:
        return "contradicts", f"{category} claimed but no container has exited"
    if category == "hang" and not (running or paused):
        return "contradicts", "hang claimed but no container is running or paused"
    if category in ("overload", "cpu_saturation") and not running:
        return "contradicts", f"{category} claimed but no container is running"
    if category == "dependency_failure" and not deps_down:
        return "contradicts", "dependency_failure claimed but no dependency is down"
    if category == "no_fault" and (
        down
        or paused
        or probe.get("ok") is False
        or any(c.get("health") == "unhealthy" for c in containers)
    ):
        return "contradicts", "no_fault claimed but a container or its probe is failing"
    if category == "memory_exhaustion" and not (
        any(c.get("oom_killed") for c in containers)
        or any((u.get("memory_percent") or 0) >= 80 for u in usage)
    ):
        return "unsupported", "memory_exhaustion claimed without an OOM kill or high memory use"
    if category == "disk_full" and not any(w in text for w in rules.DISK_WORDS):
        return "unsupported", "disk_full claimed without a 'no space' message"
    return "consistent", ""


def calibrate(answer: DiagnosisAnswer, case: Investigation, corpus: Corpus) -> Calibrated:
    """The final confidence of a model's diagnosis and the citations the data supports."""
    notes: list[str] = []
    baseline = rules.diagnose(case)
    if baseline.category == answer.category:
        bound = baseline.confidence
    else:
        bound = DISAGREE_CAP
        notes.append(f"the rules say {baseline.category} ({baseline.confidence:.2f})")
    support, why = fact_check(answer.category, case)
    if support == "contradicts":
        bound = min(bound, CONTRADICTED_CAP)
        notes.append(why)
    elif support == "unsupported":
        bound = min(bound, UNSUPPORTED_CAP)
        notes.append(why)
    grounded = [c for c in answer.evidence if corpus.grounds(c)]
    share = len(grounded) / len(answer.evidence) if answer.evidence else 0.0
    if share < 1.0:
        missing = len(answer.evidence) - len(grounded)
        notes.append(
            f"{missing} of {len(answer.evidence)} cited items are not in the gathered data"
            if answer.evidence
            else "no evidence cited"
        )
    bound *= 0.5 + 0.5 * share
    return Calibrated(round(min(answer.confidence, bound), 3), grounded, notes)
