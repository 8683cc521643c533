"""SharePoint Online's app quota: resource units (RU) per app per tenant per rolling minute.

SharePoint throttles an app by what its calls cost, not by how many it makes: reading one item
costs 1 RU, a page of items, list metadata or a write 2 RU (Microsoft's published Graph costs;
"Avoid getting throttled or blocked in SharePoint Online"). The minute budget depends on the
tenant's licences: 1,250 / 2,500 / 3,750 / 5,000 / 6,250 RU. Parts of a ``$batch`` are charged
one by one. Over budget: 429 with a ``Retry-After`` that says when enough RUs have left the
rolling window; from 80% of the budget on, answers carry draft-03 ``RateLimit-*`` headers.
Requests refused here cost nothing, so a client that waits its ``Retry-After`` gets in.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from ..model.pause import RetryAfterHold

__all__ = ["QuotaDecision", "ResourceUnits", "format_retry_after"]

WINDOW = 60.0  # seconds: SharePoint's quota is per rolling minute
HEADERS_FROM = 0.8  # RateLimit-* headers once the app has used this share of its minute


@dataclass
class QuotaDecision:
    allowed: bool
    retry_after: float = 0.0  # seconds, rounded up to the millisecond
    early: tuple[float, float, float] | None = None  # came back early: (arrived, 429 sent, Retry-After ended)
    headers: dict[str, str] = field(default_factory=dict)  # RateLimit-* (empty below 80%)

    @property
    def violation(self) -> bool:
        """Came back before a Retry-After it was given had elapsed."""
        return self.early is not None


@dataclass
class _Window(RetryAfterHold):
    entries: deque[tuple[float, int]] = field(default_factory=deque)  # (time, cost)
    used: int = 0


def format_retry_after(seconds: float) -> str:
    """Delta-seconds rounded up to the ms, fractional only when needed ("1", "0.25", "12.004")."""
    ms = max(1, math.ceil(seconds * 1000 - 1e-6))
    return f"{ms / 1000:.3f}".rstrip("0").rstrip(".")


class ResourceUnits:
    """Rolling-minute RU budgets keyed by (client id, tenant id); also the per-tenant usage figures."""

    def __init__(self, per_minute: int, now: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._now = now
        self._windows: dict[tuple[str, str], _Window] = {}
        self.used: dict[str, int] = {}  # RUs charged per tenant id since reset
        self.peak: dict[str, int] = {}  # most RUs one app of the tenant had in its rolling minute

    def _window(self, client_id: str, tenant_id: str, now: float) -> _Window:
        w = self._windows.setdefault((client_id, tenant_id), _Window())
        while w.entries and w.entries[0][0] <= now - WINDOW:
            w.used -= w.entries.popleft()[1]
        return w

    def _headers(self, w: _Window, now: float) -> dict[str, str]:
        limit = self.per_minute
        if limit <= 0 or w.used < HEADERS_FROM * limit:
            return {}
        reset = math.ceil(w.entries[0][0] + WINDOW - now) if w.entries else 0
        return {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(max(0, limit - w.used)),
                "RateLimit-Reset": str(max(1, reset))}

    def charge(self, client_id: str, tenant_id: str, cost: int, arrived: float | None = None) -> QuotaDecision:
        """Spend ``cost`` RUs of the app's minute for a request that came in at ``arrived`` (default: now), or say
        how long to wait for them."""
        now = self._now()
        w = self._window(client_id, tenant_id, now)
        early = w.early(now if arrived is None else arrived)
        limit = self.per_minute
        fits = w.used + cost <= limit or (not w.entries and cost > limit)  # one oversized call still runs
        if now < w.not_before or not fits:
            wait = max(self._wait(w, cost, now), w.not_before - now, 0.001)
            wait = max(1, math.ceil(wait * 1000 - 1e-6)) / 1000
            w.hold(now, now + wait)
            headers = self._headers(w, now) or {"RateLimit-Limit": str(limit),
                                                "RateLimit-Remaining": str(max(0, limit - w.used))}
            headers["RateLimit-Reset"] = str(max(1, math.ceil(wait)))
            return QuotaDecision(False, wait, early, headers)
        if cost > 0:
            w.entries.append((now, cost))
            w.used += cost
            self.used[tenant_id] = self.used.get(tenant_id, 0) + cost
            self.peak[tenant_id] = max(self.peak.get(tenant_id, 0), w.used)
        return QuotaDecision(True, early=early, headers=self._headers(w, now))

    def _wait(self, w: _Window, cost: int, now: float) -> float:
        """Seconds until enough of the window's RUs have expired for ``cost`` more to fit."""
        need = w.used + cost - self.per_minute
        freed = 0
        for t, c in w.entries:
            freed += c
            if freed >= need:
                return t + WINDOW - now
        return (w.entries[-1][0] + WINDOW - now) if w.entries else 0.0

    def force(self, client_id: str, tenant_id: str, retry_after: float) -> None:
        """Remember a Retry-After handed out by an injected 429, so early retries count as violations."""
        now = self._now()
        self._window(client_id, tenant_id, now).hold(now, now + retry_after)

    def reset_figures(self) -> None:
        """Usage figures back to zero; budgets keep counting."""
        self.used.clear()
        self.peak.clear()

    def reset(self) -> None:
        self._windows.clear()
        self.reset_figures()
