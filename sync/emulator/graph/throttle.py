"""Rolling-window request budgets with Graph-style Retry-After and violation counting.

Budgets are keyed by ``(bucket, client_id, tenant_id)``; ``bucket`` is "presence" or
"directory" (SharePoint counts resource units instead: sharepoint/quota.py). Time is real monotonic time, never the presence clock:
clients sleep in real time.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..model.pause import RetryAfterHold

__all__ = ["Budget", "Decision", "Throttle"]


@dataclass
class Budget:
    limit: int
    window: float  # seconds


@dataclass
class Decision:
    allowed: bool
    retry_after: float = 0.0  # seconds, fractional (Graph sends e.g. "2.128")
    early: tuple[float, float, float] | None = None  # came back early: (arrived, 429 sent, Retry-After ended)

    @property
    def violation(self) -> bool:
        """Came back before a Retry-After it was given had elapsed."""
        return self.early is not None


@dataclass
class _State(RetryAfterHold):
    hits: deque[float] = field(default_factory=deque)
    peak: int = 0


class Throttle:
    """Decides whether a request fits its budget; remembers the Retry-After each key was given."""

    def __init__(self, budgets: dict[str, Budget], now: Callable[[], float] = time.monotonic) -> None:
        self.budgets = budgets
        self._now = now
        self._state: dict[tuple[str, str, str], _State] = {}

    def check(self, bucket: str, client_id: str, tenant_id: str, arrived: float | None = None) -> Decision:
        """Count one request that came in at ``arrived`` (default: now); throttled requests count too, as on
        Graph."""
        budget = self.budgets.get(bucket)
        if budget is None:
            return Decision(True)
        st = self._state.setdefault((bucket, client_id, tenant_id), _State())
        now = self._now()
        while st.hits and st.hits[0] <= now - budget.window:
            st.hits.popleft()
        early = st.early(now if arrived is None else arrived)
        if now < st.not_before or len(st.hits) >= budget.limit:
            # The slot frees when the oldest request in the window expires.
            wait = max(st.hits[0] + budget.window - now if st.hits else 0.0, st.not_before - now, 0.001)
            wait = math.ceil(wait * 1000) / 1000
            st.hold(now, now + wait)
            return Decision(False, retry_after=wait, early=early)
        st.hits.append(now)
        st.peak = max(st.peak, len(st.hits))
        return Decision(True, early=early)

    def force(self, bucket: str, client_id: str, tenant_id: str, retry_after: float) -> None:
        """Record a Retry-After handed out by an injected 429, so early retries count as violations."""
        st = self._state.setdefault((bucket, client_id, tenant_id), _State())
        now = self._now()
        st.hold(now, now + retry_after)

    def peak(self, bucket: str) -> int:
        return max((s.peak for (b, _, _), s in self._state.items() if b == bucket), default=0)

    def reset(self) -> None:
        self._state.clear()
