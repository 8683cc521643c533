"""The loops' schedule: drift-free ticks; an overrun skips missed ticks, or (catch_up) runs one late tick at once."""

from __future__ import annotations

import asyncio
import time

import pytest

from sync.loops.ticker import Ticker


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


async def _next(ticker: Ticker) -> tuple[bool, float]:
    t0 = time.monotonic()
    ok = await ticker.next()
    return ok, time.monotonic() - t0


@pytest.mark.parametrize("catch_up", [False, True])
def test_an_overrun_skips_the_missed_ticks_or_runs_one_late_tick_at_once(catch_up: bool) -> None:
    async def go() -> None:
        clock = Clock()
        ticker = Ticker(1.0, asyncio.Event(), clock=clock, catch_up=catch_up)
        assert (await _next(ticker))[0]  # the first tick starts at once, at t=100
        assert ticker.until_next() == pytest.approx(1.0)
        clock.t = 102.95  # that tick overran: the ticks due at 101 and 102 were missed
        ok, waited = await _next(ticker)
        assert ok
        if catch_up:
            assert waited < 0.04 and ticker.skipped == 1  # the tick due at 102 runs now, late
            assert ticker.until_next() == pytest.approx(0.05)  # and the grid resumes at 103
        else:
            assert waited >= 0.04 and ticker.skipped == 2  # slept until the tick due at 103
            clock.t = 103.0
            assert ticker.until_next() == pytest.approx(1.0)
    asyncio.run(go())


def test_a_stopped_ticker_ends_at_once() -> None:
    async def go() -> None:
        stop = asyncio.Event()
        ticker = Ticker(30.0, stop)
        assert await ticker.next()
        stop.set()
        assert not (await _next(ticker))[0]
    asyncio.run(go())
