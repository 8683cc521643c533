"""Plain data that flows through one cycle: roster rows, validation results, presences, changes.

Pure data: no I/O, no third-party imports. Timestamps are timezone-aware UTC datetimes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

__all__ = [
    "CODES",
    "ERROR_CODES",
    "AgentRow",
    "Change",
    "CycleResult",
    "DirectoryUser",
    "Presence",
    "ValidationRow",
    "WriteResult",
]

# Finding codes, in the order they are reported. Severity "error": the agent cannot be collected;
# "warning": fixed automatically or collected with a caveat.
CODES: dict[str, str] = {
    "EMPTY": "error",
    "TOO_LONG": "error",
    "CONTROL_CHAR": "error",
    "WHITESPACE": "warning",
    "UNICODE": "warning",
    "QUOTED": "warning",
    "ANGLE_ADDRESS": "warning",
    "PREFIX": "warning",
    "REPEATED_PREFIX": "warning",
    "URL_ENCODED": "warning",
    "TRAILING_DOT": "warning",
    "MULTIPLE": "error",
    "SYNTAX": "error",
    "CONFUSABLE": "error",
    "DISPLAY_NAME": "error",
    "UNKNOWN_DOMAIN": "error",
    "UNVERIFIED_DOMAIN": "error",
    "GUEST": "warning",
    "NOT_UPN": "warning",
    "NOT_FOUND": "error",
    "DISABLED": "warning",
    "DUPLICATE": "warning",
}
ERROR_CODES = frozenset(c for c, s in CODES.items() if s == "error")


@dataclass(frozen=True, slots=True)
class AgentRow:
    """One item of the Agent list as read from SharePoint (or a roster CSV)."""

    item_id: int
    raw_upn: str | None
    etag: str | None = None
    fields: dict[str, object] = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True, slots=True)
class DirectoryUser:
    """One Entra user as the local directory cache holds it."""

    id: str
    upn: str
    display_name: str = ""
    mail: str | None = None
    proxy_addresses: tuple[str, ...] = ()  # as Graph sends them, e.g. "SMTP:a@b.com", "SIP:a@b.com"
    im_addresses: tuple[str, ...] = ()
    account_enabled: bool = True
    user_type: str = "Member"


@dataclass(frozen=True, slots=True)
class ValidationRow:
    """The verdict on one roster cell (one row of validation.csv)."""

    item_id: int
    raw_upn: str | None
    normalized_upn: str  # "" when the agent cannot be collected
    status: str  # "ok" | "fixed" | "invalid"
    codes: tuple[str, ...]
    severity: str  # "error" | "warning" | "" (ok)
    suggestion: str = ""
    user_id: str | None = None  # resolved Entra object id, when known
    candidates: str = ""  # a tie ("ambiguous: a, b") or, for MULTIPLE, whom each address names
    detail: str = ""  # what exactly is wrong (the look-alike characters and their positions, ...)

    @property
    def collectable(self) -> bool:
        return self.status != "invalid"


@dataclass(frozen=True, slots=True)
class Presence:
    """One agent's presence as observed in one cycle (one row of presence.csv)."""

    account_id: str
    agent_item_id: int
    upn: str
    user_id: str
    display_name: str
    availability: str
    activity: str
    status_message: str
    out_of_office: bool
    observed_at: datetime
    stale: bool = False  # the chunk failed; values are the last known ones
    sequence_number: str = ""


@dataclass(frozen=True, slots=True)
class Change:
    """A presence transition (one row of presence_history.csv)."""

    account_id: str
    upn: str
    user_id: str
    from_availability: str
    from_activity: str
    to_availability: str
    to_activity: str
    changed_at: datetime


@dataclass(slots=True)
class CycleResult:
    """What one cycle did for one account; the per-cycle INFO line is built from it."""

    account_id: str
    started_at: datetime
    agents: int = 0
    valid: int = 0
    resolved: int = 0
    presences: int = 0
    changes: int = 0
    requests: int = 0
    throttled: int = 0
    stale: int = 0
    written_back: int = 0
    duration_s: float = 0.0
    error: str | None = None
    needs_human: bool = False
    note: str = ""  # why a tick was slower or partial (budget waits, 429 back-off, directory still loading)


@dataclass(slots=True)
class WriteResult:
    """What one write-back call achieved, item by item; it never retries, so the caller decides what to re-send.

    ``done``: accepted by the server (never re-send these values). ``throttled``: answered 429/5xx or not
    answered at all, item id -> Retry-After seconds (0.0 when the server gave none): re-send after that long.
    ``failed``: refused for good (4xx), item id -> reason. ``retry_after``: the longest Retry-After seen, for
    pacing the next call. ``written`` (= ``len(done)``) is kept for the cycle's counters.
    """

    done: list[int] = field(default_factory=list)
    throttled: dict[int, float] = field(default_factory=dict)  # item id -> Retry-After seconds
    failed: dict[int, str] = field(default_factory=dict)  # item id -> reason
    retry_after: float | None = None

    @property
    def written(self) -> int:
        return len(self.done)

    def throttle(self, item_id: int, retry_after: float | None) -> None:
        """Record an item to re-send after ``retry_after`` seconds (None: the server gave no advice)."""
        self.throttled[item_id] = retry_after or 0.0
        if retry_after is not None:
            self.retry_after = max(self.retry_after or 0.0, retry_after)

    def merge(self, other: WriteResult) -> None:
        """Fold another (disjoint) result into this one, e.g. one ``$batch``'s into the call's."""
        self.done.extend(other.done)
        self.throttled.update(other.throttled)
        self.failed.update(other.failed)
        if other.retry_after is not None:
            self.retry_after = max(self.retry_after or 0.0, other.retry_after)
