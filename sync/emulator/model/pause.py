"""How every budget of the local tenant judges a request that comes back before a Retry-After has passed.

A 429 tells its caller not to come back to that budget (app, tenant, bucket) before ``sent + Retry-After``. A
request that comes in (``arrived``: when its bytes reached the server, before any handler ran) after the 429 was
sent and before that moment is early, unless it came in within ``IN_FLIGHT`` of the 429: a client sending several
requests at once cannot have read that answer yet (across a real network the answer alone takes longer to arrive).
A client that ignores Retry-After keeps coming back during the pause and is caught after those first moments,
since the pause keeps the time of its first 429.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["IN_FLIGHT", "RetryAfterHold"]

IN_FLIGHT = 0.02  # seconds after a 429 in which another request of the same caller is taken to be on its way


@dataclass
class RetryAfterHold:
    not_before: float = 0.0  # when the current pause ends
    sent: float = 0.0  # when the 429 that started the current pause was sent

    def hold(self, now: float, until: float) -> None:
        """A 429 sent at ``now`` with a Retry-After ending at ``until``: pauses only ever extend."""
        if now >= self.not_before:  # a new pause starts with this 429
            self.sent = now
        self.not_before = max(self.not_before, until)

    def early(self, arrived: float) -> tuple[float, float, float] | None:
        """(arrived, 429 sent, pause end) when a request that came in at ``arrived`` came back early, else None."""
        if self.sent + IN_FLIGHT < arrived < self.not_before:
            return arrived, self.sent, self.not_before
        return None
