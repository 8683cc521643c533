"""The resource-unit budget with a fake clock and sleep: pure, no network."""

from __future__ import annotations

import asyncio

import pytest
from fake_time import FakeTime

from sync.quota import WINDOW, ResourceUnitBudget, tier


def budget(per_minute: int, t: FakeTime, headroom: float = 0.95) -> ResourceUnitBudget:
    return ResourceUnitBudget(per_minute, clock=t.clock, sleep=t.sleep, headroom=headroom)


def test_tier_follows_the_licence_bands() -> None:
    assert [tier(n) for n in (0, 1, 1000)] == [1250, 1250, 1250]
    assert [tier(n) for n in (1001, 5000, 5001, 15000, 15001, 50000, 50001, 10**7)] == [
        2500, 2500, 3750, 3750, 5000, 5000, 6250, 6250]
    with pytest.raises(ValueError):
        tier(-1)


def test_acquire_starts_at_once_while_units_fit() -> None:
    t = FakeTime(5000.0)
    b = budget(1250, t)
    assert b.capacity == 1187  # 95 % of 1,250, rounded down
    assert b.available() == 1187

    async def go() -> None:
        for _ in range(10):
            await b.acquire(40)  # a $batch of 20 updates
    asyncio.run(go())
    assert t.slept == []
    assert b.available() == 1187 - 400


def test_never_more_than_headroom_in_any_window() -> None:
    t = FakeTime(5000.0)
    b = budget(100, t, headroom=0.9)  # 90 RU per 60 s
    starts: list[tuple[float, int]] = []

    async def go() -> None:
        for n in range(40):
            units = 2 + (n % 3) * 10  # 2, 12, 22, ...
            await b.acquire(units)
            starts.append((t.now, units))
    asyncio.run(go())
    assert t.slept, "40 requests of up to 22 RU cannot fit one minute of 90 RU"
    for start, _ in starts:
        in_window = sum(u for s, u in starts if start <= s < start + WINDOW)
        assert in_window <= 90, (start, in_window)


def test_waits_exactly_until_the_oldest_units_leave_the_window() -> None:
    t = FakeTime(5000.0)
    b = budget(100, t, headroom=1.0)

    async def go() -> None:
        await b.acquire(60)
        t.now += 10
        await b.acquire(40)
        assert b.available() == 0
        await b.acquire(30)  # must wait for the first 60 to expire: 50 s after the second acquire
    asyncio.run(go())
    assert len(t.slept) == 1 and t.slept[0] == pytest.approx(50.0, abs=0.01)
    assert b.available() == 100 - 40 - 30


def test_available_counts_the_rolling_window_at_a_given_time() -> None:
    t = FakeTime(5000.0)
    b = budget(1000, t, headroom=1.0)
    start = t.now

    async def go() -> None:
        await b.acquire(300)
        t.now += 30
        await b.acquire(200)
    asyncio.run(go())
    assert b.available() == 500
    assert b.available(now=start + WINDOW + 0.5) == 800  # the first 300 have left the window
    assert b.available(now=start + 30 + WINDOW + 0.5) == 1000


def test_pause_holds_every_acquire_until_retry_after() -> None:
    t = FakeTime(5000.0)
    b = budget(1250, t)
    b.pause(2.128)
    assert b.available() == 0
    b.pause(1.0)  # a shorter pause never shortens a longer one

    async def go() -> None:
        await b.acquire(2)
    asyncio.run(go())
    assert sum(t.slept) == pytest.approx(2.129, abs=0.002)
    assert b.available() == b.capacity - 2


def test_concurrent_waiters_share_one_window() -> None:
    t = FakeTime(5000.0)
    b = budget(100, t, headroom=1.0)
    order: list[int] = []

    async def worker(n: int) -> None:
        await b.acquire(40)
        order.append(n)

    async def go() -> None:
        await asyncio.gather(*(worker(n) for n in range(5)))
    asyncio.run(go())
    assert order == [0, 1, 2, 3, 4]  # first come, first served
    assert t.now - 5000.0 == pytest.approx(2 * WINDOW, abs=0.01)  # 2 per minute: 0, 60, 120 s


def test_requests_that_never_fit_are_refused() -> None:
    t = FakeTime(5000.0)
    b = budget(100, t, headroom=0.5)
    with pytest.raises(ValueError, match="never fit"):
        asyncio.run(b.acquire(51))
    asyncio.run(b.acquire(0))  # nothing to pace
    assert b.available() == 50
    with pytest.raises(ValueError):
        ResourceUnitBudget(0)
    with pytest.raises(ValueError):
        ResourceUnitBudget(100, headroom=1.5)
