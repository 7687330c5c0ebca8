"""Pressure: workers wait while webhook requests are in flight and for CALM_AFTER after the last
one (a closed-loop client's next request comes a moment after each answer), never longer."""

from __future__ import annotations

import asyncio

from devops_agent.orchestration.pressure import Pressure


async def test_calm_comes_after_the_last_request_and_a_new_one_defers_it() -> None:
    pressure = Pressure(calm_after=0.05)
    assert not pressure.busy()
    assert await pressure.calm(limit=0)  # nothing in flight: no wait at all

    with pressure.request():
        assert pressure.busy()
        assert not await pressure.calm(limit=0.01)  # in flight: the worker is held back
    assert pressure.busy()  # just answered: the client's next request is probably on its way

    waiter = asyncio.create_task(pressure.calm())
    await asyncio.sleep(0)
    with pressure.request():  # it came: the calm moment is off again
        await asyncio.sleep(0)
        assert not waiter.done()
    assert await waiter  # and comes once no request has been in flight for calm_after
    assert not pressure.busy()


async def test_zero_calm_after_is_calm_at_once() -> None:
    pressure = Pressure(calm_after=0)
    with pressure.request():
        assert pressure.busy()
    assert not pressure.busy()
