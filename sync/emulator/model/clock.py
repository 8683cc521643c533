"""The presence clock: real time by default; tests can freeze, set, advance or speed it up."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

__all__ = ["Clock"]


class Clock:
    def __init__(self, start: datetime | None = None, speed: float = 1.0, frozen: bool = False) -> None:
        self._anchor_real = time.time()
        self._anchor = start or datetime.now(UTC)
        self.speed = speed
        self.frozen = frozen

    def now(self) -> datetime:
        if self.frozen:
            return self._anchor
        return self._anchor + timedelta(seconds=(time.time() - self._anchor_real) * self.speed)

    def _rebase(self) -> None:
        self._anchor = self.now()
        self._anchor_real = time.time()

    def set(self, when: datetime) -> None:
        self._anchor = when.astimezone(UTC)
        self._anchor_real = time.time()

    def advance(self, seconds: float) -> None:
        self._rebase()
        self._anchor += timedelta(seconds=seconds)

    def freeze(self) -> None:
        self._rebase()
        self.frozen = True

    def run(self, speed: float | None = None) -> None:
        self._rebase()
        self.frozen = False
        if speed is not None:
            self.speed = speed

    def to_json(self) -> dict[str, object]:
        return {"now": self.now().isoformat().replace("+00:00", "Z"), "frozen": self.frozen, "speed": self.speed}
