"""Run events relayed between replicas through a real PostgreSQL's LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from devops_agent.orchestration.events import EventHub
from devops_agent.orchestration.relay import MAX_PAYLOAD, Relay, encode


async def _next(queue: asyncio.Queue[dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.wait_for(queue.get(), 30)


async def test_events_reach_the_other_replicas_subscribers_in_order(pg_url: str) -> None:
    here, there = EventHub(), EventHub()
    relays = [Relay(pg_url, "replica-a", here), Relay(pg_url, "replica-b", there)]
    here.relay = relays[0].forward
    for relay in relays:
        relay.start()
    try:
        async with here.subscribe("run-1") as local, there.subscribe("run-1") as remote:
            for relay in relays:
                await asyncio.wait_for(relay.listening.wait(), 30)
            here.publish("run-1", "update", {"node": "execute", "update": {"attempts": 1}})
            here.publish("run-1", "update", {"node": "validate", "update": {"x": "y" * 9000}})
            here.publish("run-1", "end", {"status": "completed", "outcome": "resolved"})
            got = [await _next(remote) for _ in range(3)]
            assert got[0] == {
                "event": "update",
                "data": {"node": "execute", "update": {"attempts": 1}},
            }
            assert got[1] == {"event": "update", "data": {"node": "validate", "truncated": True}}
            assert got[2]["event"] == "end" and got[2]["data"]["outcome"] == "resolved"
            # The publishing replica's subscribers got each event once, from the hub itself.
            mine = [await _next(local) for _ in range(3)]
            assert [e["data"].get("node") for e in mine] == ["execute", "validate", None]
            # Nothing else came in between: the next event on each side is the one sent next.
            here.publish("run-1", "status", {"status": "marker"})
            for queue in (local, remote):
                assert (await _next(queue))["data"] == {"status": "marker"}
    finally:
        for relay in relays:
            await relay.stop()


def test_a_payload_over_the_notify_limit_keeps_only_node_and_status() -> None:
    big = encode("a", "run", "update", {"node": "learn", "update": {"text": "x" * 10_000}})
    assert len(big.encode()) <= MAX_PAYLOAD
    assert json.loads(big)["d"] == {"node": "learn", "truncated": True}
    small = encode("a", "run", "status", {"status": "awaiting_approval"})
    assert json.loads(small)["d"] == {"status": "awaiting_approval"}


async def test_garbage_and_own_events_are_ignored() -> None:
    hub = EventHub()
    relay = Relay("postgresql://unused", "me", hub)
    async with hub.subscribe("run") as queue:
        relay._deliver("not json")
        relay._deliver(json.dumps({"o": "me", "r": "run", "e": "update", "d": {}}))
        relay._deliver(json.dumps({"o": "other", "r": "run"}))
        relay._deliver(json.dumps({"o": "other", "r": "run", "e": "status", "d": {"s": 1}}))
        assert queue.qsize() == 1 and (await queue.get())["data"] == {"s": 1}
