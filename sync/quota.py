"""SharePoint's resource-unit quota, paced on our side so write-back stays under it.

SharePoint Online limits each app in each tenant by resource units (RU) per minute (and per day), by licence
band: 1,250 RU/min up to 1,000 licences, then 2,500 / 3,750 / 5,000 / 6,250. Graph's list route costs a fixed
2 RU for an item update and 2 RU for a page of items; every sub-request of a ``$batch`` counts on its own, and
throttled requests count too. ``ResourceUnitBudget`` keeps what we start inside ``headroom`` of the per-minute
figure in any rolling 60 s window, and a 429's Retry-After pauses it for every caller at once.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable

__all__ = ["RU_ITEM_UPDATE", "RU_PAGE_READ", "WINDOW", "ResourceUnitBudget", "RetryAfterGate", "tier"]

WINDOW = 60.0  # seconds: SharePoint's per-minute limit, as a rolling window
RU_ITEM_UPDATE = 2  # Graph: create, update, delete
RU_PAGE_READ = 2  # Graph: a multi-item query (one page of list items)

# (licences up to and including, RU per minute), from "Avoid getting throttled or blocked in SharePoint Online".
_BANDS: tuple[tuple[float, int], ...] = (
    (1_000, 1_250),
    (5_000, 2_500),
    (15_000, 3_750),
    (50_000, 5_000),
    (math.inf, 6_250),
)


def tier(licences: int) -> int:
    """SharePoint's per-minute RU limit for an app in a tenant with ``licences`` licences."""
    if licences < 0:
        raise ValueError(f"a licence count cannot be negative, got {licences}")
    return next(per_minute for upto, per_minute in _BANDS if licences <= upto)


class RetryAfterGate:
    """Retry-After for every SharePoint request of one app and tenant, from any thread or task.

    While a Retry-After runs nothing is sent. When it has passed, one request goes first (the probe) and the
    others hold until it is answered: several callers waiting out the same Retry-After would otherwise all
    come back in the same millisecond, and every one after the first would be early in the service's eyes.
    An answer that is not a 429/503 ends the recovery; another throttled answer starts a new pause.
    """

    HOLD = 0.05  # seconds between looks while the probe is out

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._recovering = False
        self._probe_out = False

    def paused_for(self) -> float:
        """Seconds left of the pause; a short hold while a probe is out; 0 when requests may go."""
        with self._lock:
            left = self._paused_until - self._clock()
            if left > 0:
                return left
            return self.HOLD if self._recovering and self._probe_out else 0.0

    def pause(self, seconds: float, throttled: bool = True) -> None:
        """A 429 or 503 with Retry-After (both alike here): nothing starts before it has passed; pauses only
        ever extend."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))
            self._recovering = True

    def start(self) -> tuple[float, bool]:
        """(seconds to hold, 0 to go now; whether this request is the probe that ends a recovery)."""
        with self._lock:
            left = self._paused_until - self._clock()
            if left > 0:
                return left, False
            if not self._recovering:
                return 0.0, False
            if self._probe_out:
                return self.HOLD, False
            self._probe_out = True
            return 0.0, True

    def settle(self, probe: bool, throttled: bool | None) -> None:
        """A request ended: ``throttled`` True (429/503), False (any other answer) or None (no answer)."""
        with self._lock:
            if probe:
                self._probe_out = False
                if throttled is False:
                    self._recovering = False

    async def acquire(self) -> bool:
        """Wait until this request may go; True when it is the probe (pass it to ``settle``)."""
        while True:
            wait, probe = self.start()
            if wait <= 0:
                return probe
            await self._sleep(wait + 0.001)


class ResourceUnitBudget:
    """At most ``headroom * per_minute`` RUs started in any rolling 60 s window, shared by all tasks.

    Waiters are served in order (one lock), so a large request is not starved by a stream of small ones.
    """

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, headroom: float = 0.95) -> None:
        if per_minute < 1:
            raise ValueError(f"a resource-unit budget needs per_minute >= 1, got {per_minute}")
        if not 0.0 < headroom <= 1.0:
            raise ValueError(f"headroom is a fraction in (0, 1], got {headroom}")
        self.per_minute = per_minute
        self.headroom = headroom
        self.capacity = max(1, math.floor(per_minute * headroom))
        self._clock = clock
        self._sleep = sleep
        self._spent: deque[tuple[float, int]] = deque()  # (start time, units), oldest first
        self._used = 0
        self.gate = RetryAfterGate(clock, sleep)  # the Retry-After every SharePoint request of the app waits on
        self._lock = asyncio.Lock()

    def _expire(self, now: float) -> None:
        while self._spent and self._spent[0][0] <= now - WINDOW:
            self._used -= self._spent.popleft()[1]

    def available(self, now: float | None = None) -> int:
        """How many RUs could start now without waiting (0 while paused)."""
        now = self._clock() if now is None else now
        self._expire(now)
        if self.gate.paused_for() > 0:
            return 0
        return max(0, self.capacity - self._used)

    def pause(self, seconds: float, throttled: bool = True) -> None:
        """Hold every acquire for ``seconds`` (a 429's or 503's Retry-After); pauses only ever extend."""
        self.gate.pause(seconds, throttled)

    def paused_for(self) -> float:
        """Seconds left of the current pause (0 when not paused); safe to call from any thread."""
        return self.gate.paused_for()

    def _wait_for(self, units: int, now: float) -> float:
        """Seconds until ``units`` fit: the pause, and enough of the oldest starts leaving the window."""
        wait = self.gate.paused_for()
        excess = self._used + units - self.capacity
        if excess > 0:
            freed = 0
            for started, spent in self._spent:
                freed += spent
                if freed >= excess:
                    wait = max(wait, started + WINDOW - now)
                    break
        return wait

    async def acquire(self, units: int) -> None:
        """Wait until ``units`` fit in the window, then count them as started now."""
        if units < 1:
            return
        if units > self.capacity:
            raise ValueError(f"{units} RU can never fit a budget of {self.capacity} RU per {WINDOW:.0f} s "
                             f"({self.headroom:.0%} of {self.per_minute}); send fewer items at a time")
        async with self._lock:
            while True:
                now = self._clock()
                self._expire(now)
                wait = self._wait_for(units, now)
                if wait <= 0:
                    self._spent.append((now, units))
                    self._used += units
                    return
                await self._sleep(wait + 0.001)

