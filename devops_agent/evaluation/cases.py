"""One case: one contender on one scenario, from set-up to score.

The timeline: set up the containers (healthy), start the watcher, inject the fault (the clock
starts), wait until the fault is visible, send the alerts, let the contender work, then watch
the recovery check for the scenario's hold window. Actions are read afterwards from the
engine's event log, between the moment the fault was visible and the end of the case.
"""

from __future__ import annotations

import itertools
import time

import docker
import docker.errors
import httpx

from devops_agent.evaluation.alerts import payload
from devops_agent.evaluation.baselines import Contender
from devops_agent.evaluation.events import actions_of, read_events
from devops_agent.evaluation.scenario import Scenario
from devops_agent.evaluation.scoring import CaseResult, error_case, score_case
from devops_agent.evaluation.watch import Round, Watcher, recovered_since
from devops_agent.evaluation.world import LABEL_CASE, World

LINGER = 3.0  # seconds a one-shot contender's work is watched after it says it is done
# Docker's restart policy may heal a crash before the fault is seen: it gets a short wait, and
# its actions are counted from the injection on (it overrides the scenario's own policy).
POLICY_VISIBLE = 3.0
_numbers = itertools.count(1)


class CaseError(Exception):
    """The case could not be run as the scenario says (not the contender's fault)."""


def hold_result(
    rounds: list[Round], seen_at: float, hold: float, done_at: float, now: float
) -> tuple[bool | None, float | None]:
    """(held, recovery start): True once the recovery has held for `hold` seconds and the
    contender is done; None while it may still; the start of the current recovery stretch.
    Only rounds from `seen_at` on count (when the fault was seen, or injected when it never
    was): a round before it may predate the fault."""
    start = recovered_since([r for r in rounds if r.at >= seen_at])
    if start is None:
        return None, None
    if now >= max(start + hold, done_at + LINGER):
        return True, start
    return None, start


def watch_recovery(
    watcher: Watcher,
    scenario: Scenario,
    contender: Contender,
    times: tuple[float, float, float],
) -> tuple[bool, float | None]:
    """Watch until the fix held through the window (True, when the recovery began) or the
    contender's time is up (False, None). `times`: fault injected, fault seen, contender done."""
    fault_at, seen_at, done_at = times
    give_up = (fault_at + scenario.act_within) if contender.continuous else (done_at + LINGER)
    while True:
        now = time.time()
        held, start = hold_result(watcher.snapshot(), seen_at, scenario.hold, done_at, now)
        if held:
            return True, start
        if start is None and now >= give_up:
            return False, None
        time.sleep(0.2)


def run_case(
    client: docker.DockerClient, scenario: Scenario, contender: Contender, run_id: str
) -> CaseResult:
    started = time.monotonic()
    result = _run_case(client, scenario, contender, run_id)
    result.seconds = round(time.monotonic() - started, 1)
    return result


def _run_case(
    client: docker.DockerClient, scenario: Scenario, contender: Contender, run_id: str
) -> CaseResult:
    case_id = f"{run_id}-{next(_numbers)}"
    world = World(client, scenario, run_id, case_id, policy_override=contender.restart_policy)
    watcher: Watcher | None = None
    begun = False
    try:
        world.setup()
        contender.begin(world)
        begun = True
        watcher = Watcher(world, scenario.recovery).start()
        fault_at = time.time()
        world.inject()
        since = time.time()
        within = POLICY_VISIBLE if contender.restart_policy else scenario.visible_within
        visible_at = world.wait_visible(within)
        if visible_at is None and not contender.continuous:
            raise CaseError(f"the fault was not visible within {within:g}s")
        since = max(since, visible_at or since)
        existing = {
            str(c.id)
            for c in client.containers.list(all=True, filters={"label": f"{LABEL_CASE}={case_id}"})
        }
        contender.alerts([payload(a, world.fill) for a in scenario.alerts])
        contender.wait(time.monotonic() + scenario.deadline)
        done_at = time.time()
        times = (fault_at, visible_at or fault_at, done_at)
        held, recovered_at = watch_recovery(watcher, scenario, contender, times)
        verdict = contender.verdict()
        end = time.time()
        rounds = watcher.stop()
        events = read_events(client, case_id, since, end)
        return score_case(
            scenario,
            contender.name,
            verdict,
            actions_of(events, existing),
            rounds,
            events,
            fault_at=fault_at,
            since=since,
            held=held,
            recovered_at=recovered_at,
        )
    except (
        CaseError,
        TimeoutError,
        RuntimeError,
        docker.errors.DockerException,
        httpx.HTTPError,
    ) as exc:
        return error_case(scenario, contender.name, str(exc)[:300])
    finally:
        if begun:
            contender.end()
        if watcher is not None:
            watcher.stop()
        world.cleanup()
