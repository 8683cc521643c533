"""Counters the control API reports under ``GET /_emulator/stats``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Stats"]


@dataclass
class Stats:
    requests: Counter[str] = field(default_factory=Counter)  # by endpoint name, e.g. "graph.presence"
    status: Counter[int] = field(default_factory=Counter)
    throttled: int = 0  # 429s sent (including 429 items inside $batch)
    retry_after_violations: int = 0  # requests that came back before their Retry-After had elapsed
    max_presence_ids: int = 0  # most ids seen in one getPresencesByUserId body
    presence_ids_total: int = 0
    presence_window_peak: int = 0  # most presence requests in any 30 s window per (app, tenant)
    faults_injected: Counter[str] = field(default_factory=Counter)
    violations_by: Counter[str] = field(default_factory=Counter)  # where each violation was seen
    violations_recent: list[dict[str, Any]] = field(default_factory=list)  # the last few, with their times

    def count(self, endpoint: str) -> None:
        self.requests[endpoint] += 1

    def violation(self, where: str, key: tuple[str, ...] | str, arrived: float, sent: float, until: float) -> None:
        """A request that came in (``arrived``) after a 429 was sent (``sent``) and before its Retry-After ended
        (``until``); ``where`` names the budget that judged it, ``key`` the caller and bucket."""
        self.retry_after_violations += 1
        self.violations_by[where] += 1
        self.violations_recent.append({"where": where, "key": list(key) if isinstance(key, tuple) else [key],
                                       "after_429_s": round(arrived - sent, 3), "early_by_s": round(until - arrived, 3)})
        del self.violations_recent[:-20]

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "requests_total": sum(self.requests.values()),
            "status": {str(k): v for k, v in sorted(self.status.items())},
            "throttled": self.throttled,
            "retry_after_violations": self.retry_after_violations,
            "retry_after_violations_by": dict(self.violations_by),
            "retry_after_violations_recent": list(self.violations_recent),
            "max_presence_ids": self.max_presence_ids,
            "presence_ids_total": self.presence_ids_total,
            "presence_window_peak": self.presence_window_peak,
            "faults_injected": dict(self.faults_injected),
        }

    def reset(self) -> None:
        fresh = Stats()
        self.__dict__.update(fresh.__dict__)
