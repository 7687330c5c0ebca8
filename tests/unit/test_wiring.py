"""The compiled graph is wired exactly as the routing functions say, and nothing is stranded."""

from __future__ import annotations

from devops_agent import routing
from devops_agent.graph import CONDITIONAL, FIXED, NODES, graph


def _edges() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for edge in graph.get_graph().edges:
        found.setdefault(edge.source, set()).add(edge.target)
    return found


def test_each_conditional_node_goes_exactly_where_its_routing_function_may_send_it() -> None:
    edges = _edges()
    for node, route in CONDITIONAL.items():
        assert edges[node] == set(routing.targets(route)), node


def test_the_fixed_edges_and_the_start_are_as_declared() -> None:
    edges = _edges()
    assert edges["__start__"] == {"triage"}
    for node, after in FIXED.items():
        assert edges[node] == {after}, node


def test_every_node_has_a_way_out_and_a_way_in() -> None:
    edges = _edges()
    reached = set().union(*edges.values())
    for node in NODES:
        assert node in edges, f"{node} has no outgoing edge"
        assert node in reached, f"nothing leads to {node}"


def test_routing_reads_codes_not_text() -> None:
    """An escalation message alone routes nowhere special: only its reason code does."""
    text_only = {"validation": {"healthy": False}, "escalation": "still unhealthy"}
    assert routing.after_validate(text_only) == "root_cause"  # type: ignore[arg-type]
    coded = {**text_only, "escalation_reason": "did_not_hold"}
    assert routing.after_validate(coded) == "rollback"  # type: ignore[arg-type]
    assert routing.after_execute({"escalation": "x"}) == "validate"  # type: ignore[typeddict-item]
    assert routing.after_execute({"escalation_reason": "dry_run"}) == "escalate"  # type: ignore[typeddict-item]
