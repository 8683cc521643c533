"""A clock and sleep for code that takes them as parameters: sleeping advances the clock, nothing waits."""

from __future__ import annotations


class FakeTime:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
