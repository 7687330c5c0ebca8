"""Reason codes: why a step was refused, why a person is asked, why a run escalated.

The codes are part of the public contract (README, "Reason codes"): scripts and dashboards
match on them, people read the message beside each one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Reason = Literal[
    "safety_mode",
    "risk_above_auto",
    "low_confidence",
    "kill_switch",
    "maintenance_window",
    "policy_approval",
    "policy_forbid",
    "silenced",
    "rate_limit_service",
    "rate_limit_global",
    "max_targets",
    "max_replicas",
    "max_scale_step",
    "not_allowlisted",
    "breaker_open",
    "recently_remediated",
    "did_not_hold",
    "ineffective_chain",
    "crash_loop",
    "cannot_fix",
    "unknown_target",
    "ambiguous_target",
    "reconcile_unknown",
    "lease_lost",
    "stale_request",
    "expired",
    "rejected",
    "joined",
    "dry_run",
    "backend_unreachable",
    "llm_rejected",
]
REASONS: tuple[str, ...] = Reason.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Finding:
    """One reason, as a code for machines and a sentence for people."""

    code: Reason
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


def messages(findings: list[Finding]) -> str:
    """The findings' sentences, joined, each once."""
    return "; ".join(dict.fromkeys(f.message for f in findings))
