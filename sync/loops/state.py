"""What the loops of one account share: immutable snapshots, swapped whole, never edited in place.

The roster loop publishes a new ``Targets`` (who to read presence for); the presence loop takes whichever
snapshot is current at the start of its tick and never waits for the next one. The presence loop publishes
the latest presences the same way for the write-back loop. A swap is one attribute assignment on the event
loop's thread, so a reader sees either the old snapshot or the new one, never half of each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from ..models import Presence, ValidationRow
from ..validation import Domains

__all__ = ["AccountState", "Targets"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Targets:
    """Who the presence loop reads, derived once per roster/directory change."""

    rows: tuple[ValidationRow, ...] = ()  # collectable rows with a user id, in item order
    user_ids: tuple[str, ...] = ()  # distinct, in row order
    agents: int = 0  # Agent-list items
    valid: int = 0  # collectable items
    shared_users: bool = False  # several rows name the same user (duplicates)
    complete: bool = True  # False while a cold start is still reading the directory
    version: int = 0

    @classmethod
    def of(cls, validation: Sequence[ValidationRow], *, complete: bool = True, version: int = 0) -> Targets:
        valid = [v for v in validation if v.collectable]
        rows = tuple(v for v in valid if v.user_id)
        ids = tuple(dict.fromkeys(v.user_id or "" for v in rows))
        return cls(rows, ids, len(validation), len(valid), len(ids) != len(rows), complete, version)


@dataclass
class AccountState:
    """The account's current snapshots and the events that announce them."""

    account_id: str
    targets: Targets = field(default_factory=Targets)
    validation: tuple[ValidationRow, ...] = ()  # the latest complete verdicts (for write-back and outputs)
    domains: Domains | None = None
    domains_version: int = 0
    presences: tuple[Presence, ...] = ()  # the latest presence of every target (for write-back)
    observed_at: datetime | None = None
    targets_ready: asyncio.Event = field(default_factory=asyncio.Event)  # the first Targets was published
    domains_ready: asyncio.Event = field(default_factory=asyncio.Event)
    domains_changed: asyncio.Event = field(default_factory=asyncio.Event)  # revalidate against new domains
    complete_snapshot: asyncio.Event = field(default_factory=asyncio.Event)  # presence of every target stored
    presence_running: bool = False  # a presence loop ticks on its own (not a --once pass)

    failures: list[str] = field(default_factory=list)  # what went wrong in the slow loops (exit code 1)
    on_failure: Callable[[str], None] | None = None  # told of each failure (the job's monitor)

    def note_failure(self, what: str) -> None:
        log.error("account %s: %s", self.account_id, what)
        self.failures = [*self.failures[-99:], what]
        if self.on_failure is not None:
            self.on_failure(what)

    def publish_targets(self, targets: Targets) -> None:
        self.targets = targets
        self.targets_ready.set()

    def publish_domains(self, domains: Domains) -> None:
        if domains != self.domains:
            self.domains = domains
            self.domains_version += 1
            if self.domains_ready.is_set():
                self.domains_changed.set()
        self.domains_ready.set()
