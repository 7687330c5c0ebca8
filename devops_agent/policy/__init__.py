"""The policy: whether a step may run by itself, needs a person, or must not run.

`document` is the POLICY_FILE, `facts` what the store knows, `checks` every refusal and reason
to ask, `reasons` the codes they carry.
"""

from devops_agent.policy.checks import StepVerdict, Verdict, decide, judge_step, refusals
from devops_agent.policy.document import PolicyDocument, load_policy
from devops_agent.policy.facts import PolicyFacts, TargetFacts
from devops_agent.policy.reasons import REASONS, Finding, Reason

__all__ = [
    "REASONS",
    "Finding",
    "PolicyDocument",
    "PolicyFacts",
    "Reason",
    "StepVerdict",
    "TargetFacts",
    "Verdict",
    "decide",
    "judge_step",
    "load_policy",
    "refusals",
]
