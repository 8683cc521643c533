"""The one scheduling rule every loop follows: drift-free ticks, no overlap, stop at once when asked.

The n-th tick starts at ``start + n * interval``; a tick that overruns skips the ticks it missed instead of
bunching them up (``catch_up``: one late tick starts at once, then the grid resumes; the presence loop's choice,
since a read now beats a read at the next grid point). A failing step is retried at the next tick (after
``backoff`` when it keeps failing), so one bad call never ends a loop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

__all__ = ["Ticker", "sleep_or_stop"]


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``stop`` is set first; True when asked to stop."""
    if stop.is_set():
        return True
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
        return True
    except TimeoutError:
        return False


class Ticker:
    """Drift-free ticks at ``interval`` seconds until ``stop`` is set."""

    def __init__(self, interval: float, stop: asyncio.Event,
                 clock: Callable[[], float] = time.monotonic, catch_up: bool = False) -> None:
        self.interval = interval
        self.stop = stop
        self.catch_up = catch_up
        self._clock = clock
        self._start: float | None = None
        self._tick = 0
        self.skipped = 0  # ticks missed because a step overran

    async def next(self) -> bool:
        """Wait for the next tick; False when asked to stop. The first call returns at once."""
        now = self._clock()
        if self._start is None:
            self._start = now
            return not self.stop.is_set()
        self._tick += 1
        due = self._start + self._tick * self.interval
        if due < now:
            missed = int((now - self._start) // self.interval) + 1 - self._tick
            if self.catch_up:
                missed -= 1  # the last missed tick runs now
            self.skipped += missed
            self._tick += missed
            due = self._start + self._tick * self.interval
        return not await sleep_or_stop(self.stop, due - self._clock())

    def until_next(self) -> float:
        """Seconds from now until the next tick is due (the current tick's time budget)."""
        if self._start is None:
            return self.interval
        return self._start + (self._tick + 1) * self.interval - self._clock()

    async def run(self, step: Callable[[], Awaitable[object]]) -> None:
        while await self.next():
            await step()
