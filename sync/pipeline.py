"""One cycle for one account: roster -> validate -> resolve -> presence -> diff -> outputs.

The hot path (every cycle) is: validate the cached roster (memoised per cell), one presence
request per 650 agents, a diff against the in-memory snapshot, and batched writes of what
changed. Slower things run at their own cadence: the roster and the directory delta (every
``roster_interval``), the domains (``domains_interval``), SharePoint write-back
(``writeback_interval``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from .errors import GraphError, RosterError
from .graph.client import GraphClient
from .graph.directory import fetch_domains, lookup_users, sync_delta
from .graph.presence import fetch_presences
from .models import AgentRow, Change, CycleResult, DirectoryUser, Presence, ValidationRow, WriteResult
from .roster import DirectoryIndex, Domains, Validator, normalize
from .settings import WriteBackColumns
from .store import Store

__all__ = ["AccountPipeline", "Cadence", "CycleOutput", "RosterSource", "writeback_values"]

log = logging.getLogger(__name__)


class RosterSource(Protocol):
    async def read(self) -> list[AgentRow]: ...
    async def write(self, updates: Mapping[int, Mapping[str, str]]) -> WriteResult: ...


@dataclass(frozen=True)
class Cadence:
    roster_interval: float = 60.0  # re-read the Agent list and the directory delta
    domains_interval: float = 300.0
    writeback_interval: float = 60.0
    writeback_max_items: int = 600  # per tick, so SharePoint's quota holds; the rest follow at the next ticks
    lookup_limit: int = 400  # UPNs missing from the cache looked up per roster refresh
    presence_deadline: float = 30.0  # seconds a failing presence chunk is retried before its agents go stale


@dataclass
class CycleOutput:
    result: CycleResult
    presences: list[Presence]
    changes: list[Change]
    validation: list[ValidationRow]
    validation_changed: bool
    observed_at: datetime  # when this cycle's presence was read (presence.csv's observed_at_utc)
    planned_writes: dict[int, dict[str, str]] = field(default_factory=dict)


_UNKNOWN: dict[str, Any] = {"availability": "PresenceUnknown", "activity": "PresenceUnknown"}


def iso_z(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def upn_status_text(v: ValidationRow) -> str:
    return v.status if not v.codes else f"{v.status}: {', '.join(v.codes)}"


def writeback_values(v: ValidationRow, p: Presence | None, cols: WriteBackColumns) -> dict[str, str]:
    """The column values one Agent-list item should hold (PresenceUpdated: when the current state began)."""
    out = {cols.upn_status: upn_status_text(v)}
    if p is not None and not p.stale:
        out[cols.availability] = p.availability
        out[cols.activity] = p.activity
        out[cols.presence_updated] = iso_z(p.observed_at)
    return out


def _text(msg: Any) -> str:
    if isinstance(msg, dict):
        inner = msg.get("message")
        if isinstance(inner, dict):
            return str(inner.get("content") or "")
    return ""


@dataclass(frozen=True)
class _Targets:
    """What the presence step needs from a validation result; rebuilt only when the validation changes."""

    rows: list[ValidationRow]  # collectable rows with a user id
    user_ids: list[str]  # distinct, in row order
    valid: int
    shared_users: bool  # several rows name the same user (duplicates)

    @classmethod
    def of(cls, validation: Sequence[ValidationRow]) -> _Targets:
        valid = [v for v in validation if v.collectable]
        rows = [v for v in valid if v.user_id]
        ids = list(dict.fromkeys(v.user_id or "" for v in rows))
        return cls(rows, ids, len(valid), len(ids) != len(rows))


@dataclass
class AccountPipeline:
    account_id: str
    graph: GraphClient
    roster: RosterSource
    store: Store
    cadence: Cadence = field(default_factory=Cadence)
    columns: WriteBackColumns = field(default_factory=WriteBackColumns)
    dry_run: bool = False
    writeback_enabled: bool = True
    extra_requests: Any = None  # callable returning requests made outside Graph (SharePoint REST)
    # cached state
    _rows: list[AgentRow] = field(default_factory=list)
    _roster_at: float = -1e18
    _domains: Domains | None = None
    _domains_at: float = -1e18
    _validator: Validator | None = None
    _validator_key: tuple[int, int] = (-1, -1)
    _domains_version: int = 0
    _validation: list[ValidationRow] = field(default_factory=list)
    _targets: _Targets = field(default_factory=lambda: _Targets([], [], 0, False))
    _looked_up: set[str] = field(default_factory=set)
    _last_presence: dict[int, Presence] = field(default_factory=dict)  # by Agent-list item id
    _stored_since: dict[str, tuple[str, str, datetime]] | None = None  # the store's last transitions (restart)
    _writeback_at: float = -1e18
    _writeback_cursor: int = 0  # last item id written when a write-back had to be split over ticks

    async def _refresh_domains(self, now: float) -> None:
        if self._domains is None or now - self._domains_at >= self.cadence.domains_interval:
            self._domains = Domains.from_graph(await fetch_domains(self.graph))
            self._domains_at = now
            self._domains_version += 1

    async def _refresh_directory(self) -> None:
        delta = await sync_delta(self.graph, self.store.get_delta_link(self.account_id))
        if delta.full:
            self.store.reset_directory(self.account_id)
        if delta.upserts:
            self.store.upsert_users(self.account_id, delta.upserts)
        if delta.removed:
            self.store.delete_users(self.account_id, delta.removed)
        self.store.set_delta_link(self.account_id, delta.delta_link)

    def _validator_for(self) -> Validator:
        assert self._domains is not None
        key = (self._domains_version, self.store.directory_version(self.account_id))
        if self._validator is None or key != self._validator_key:
            self._validator = Validator(self._domains, DirectoryIndex.build(self.store.load_directory(self.account_id)))
            self._validator_key = key
        return self._validator

    async def _resolve_missing(self, rows: Sequence[ValidationRow]) -> bool:
        """Look up NOT_FOUND UPNs that may be newer than the cache; True when the cache grew.

        Only values that passed the syntax check are looked up (NOT_FOUND implies it), in normalised form.
        """
        missing: list[str] = []
        for r in rows:
            if "NOT_FOUND" in r.codes:
                value = normalize(r.raw_upn)[0]
                if value and value not in self._looked_up:
                    missing.append(value)
        missing = list(dict.fromkeys(missing))[: self.cadence.lookup_limit]
        if not missing:
            return False
        self._looked_up.update(missing)
        found = await lookup_users(self.graph, missing)
        users = [u for u in found.values() if u is not None]
        if users:
            self.store.upsert_users(self.account_id, users)
        return bool(users)

    async def _refresh_roster(self, now: float, force: bool) -> bool:
        if not force and now - self._roster_at < self.cadence.roster_interval:
            return False
        try:
            self._rows = await self.roster.read()
        except GraphError as exc:
            if not self._rows:
                raise RosterError(f"the Agent list could not be read: {exc}") from exc
            log.warning("account %s: Agent list re-read failed, using the last copy: %s", self.account_id, exc)
            return False
        await self._refresh_directory()  # users created later arrive here, so a missed lookup is not repeated
        self._roster_at = now
        return True

    def _users_by_id(self) -> Mapping[str, DirectoryUser]:
        """The directory by user id (for display names), from the validator's index."""
        return self._validator.directory.by_id if self._validator is not None else {}

    def _validate(self) -> list[ValidationRow]:
        return self._validator_for().validate(self._rows)

    async def _verdict(self, force_refresh: bool) -> list[ValidationRow]:
        """Domains and roster (and directory) at their cadence, then the validation of every Agent-list item."""
        mono = time.monotonic()
        await self._refresh_domains(mono)
        refreshed = await self._refresh_roster(mono, force_refresh)
        validation = self._validate()
        if refreshed and await self._resolve_missing(validation):
            validation = self._validate()
        return validation

    async def validate_only(self) -> list[ValidationRow]:
        """Roster, domains and directory only: the data-quality verdict without fetching presence."""
        validation = await self._verdict(force_refresh=True)
        self.store.save_validation(self.account_id, validation)
        return validation

    async def run_cycle(self, *, force_refresh: bool = False, final: bool = False) -> CycleOutput:
        t0 = time.perf_counter()
        started = datetime.now(UTC)
        req0, thr0 = self.graph.counters.snapshot()
        ext0 = self.extra_requests() if self.extra_requests else 0
        result = CycleResult(account_id=self.account_id, started_at=started)
        validation = await self._verdict(force_refresh)
        validation_changed = validation is not self._validation and validation != self._validation
        if validation_changed:
            self.store.save_validation(self.account_id, validation)
            self._targets = _Targets.of(validation)
        self._validation = validation
        targets = self._targets

        fetched = await fetch_presences(self.graph, targets.user_ids, deadline=self.cadence.presence_deadline)
        observed = datetime.now(UTC)
        presences, created = self._presences(targets.rows, fetched.by_id, fetched.failed_ids, observed)
        # Only presences that are new objects can differ from the stored snapshot; reused ones are unchanged.
        per_user = list({p.user_id: p for p in created}.values()) if targets.shared_users else created
        changes = self.store.apply_presences(self.account_id, per_user)

        planned: dict[int, dict[str, str]] = {}
        due = final or time.monotonic() - self._writeback_at >= self.cadence.writeback_interval
        if self.writeback_enabled and due:
            planned = await self._write_back(validation, presences, result)
            self._writeback_at = time.monotonic()

        req1, thr1 = self.graph.counters.snapshot()
        ext1 = self.extra_requests() if self.extra_requests else 0
        result.agents = len(validation)
        result.valid = targets.valid
        result.resolved = len(targets.rows)
        result.stale = len(fetched.failed_ids) and sum(1 for p in presences if p.stale)
        result.presences = len(presences) - result.stale
        result.changes = sum(1 for c in changes if c.from_availability or c.from_activity)  # not first sightings
        result.requests = (req1 - req0) + (ext1 - ext0)
        result.throttled = thr1 - thr0
        result.duration_s = time.perf_counter() - t0
        if fetched.failed_ids:
            stale = f"{len(fetched.failed_ids)} agent(s) stale: " + "; ".join(fetched.errors[:3])
            result.error = f"{stale}; {result.error}" if result.error else stale
        self.store.record_cycle(result)
        return CycleOutput(result, presences, changes, validation, validation_changed, observed, planned)

    def _presences(self, targets: Sequence[ValidationRow], by_id: Mapping[str, dict[str, Any]],
                   failed: set[str], observed: datetime) -> tuple[list[Presence], list[Presence]]:
        """One Presence per collectable agent, and those built this cycle (the others are last cycle's objects).

        ``observed_at`` is when the agent's current state was first seen (what write-back calls PresenceUpdated).
        An unchanged presence reuses last cycle's object, so the hot path costs two dict lookups and a string
        compare per agent. Failed chunks repeat the last known values, marked stale.
        """
        out: list[Presence] = []
        created: list[Presence] = []
        append = out.append
        last, users, acc = self._last_presence, self._users_by_id(), self.account_id
        if self._stored_since is None:  # after a restart, "since" comes from the stored history
            self._stored_since = {c.user_id: (c.to_availability, c.to_activity, c.changed_at)
                                  for c in self.store.snapshots([acc])}
        stored = self._stored_since
        item_of, last_of = by_id.get, last.get
        for v in targets:
            uid = v.user_id or ""
            item = item_of(uid)
            prev = last_of(v.item_id)
            if prev is not None:
                if prev.user_id != uid:
                    prev = None  # the item now names another user
                elif item is not None and not prev.stale:
                    seq = item.get("sequenceNumber")
                    if seq and seq == prev.sequence_number:
                        append(prev)  # unchanged: last cycle's object
                        continue
            if item is None:
                if uid in failed:
                    append(self._stale(v, uid, prev, observed))
                    continue
                item = _UNKNOWN  # Graph left the id out: it has no presence to report
            seq = item.get("sequenceNumber") or ""
            avail = str(item.get("availability") or "PresenceUnknown")
            act = str(item.get("activity") or "PresenceUnknown")
            if prev is not None and not prev.stale:
                since = prev.observed_at if (prev.availability, prev.activity) == (avail, act) else observed
            else:
                known = stored.get(uid)
                since = known[2] if known and known[:2] == (avail, act) else observed
            u = users.get(uid)
            ooo = item.get("outOfOfficeSettings") or {}
            p = Presence(acc, v.item_id, v.normalized_upn, uid, u.display_name if u else "", avail, act,
                         _text(item.get("statusMessage")), bool(ooo.get("isOutOfOffice")), since,
                         sequence_number=str(seq))
            last[v.item_id] = p
            append(p)
            created.append(p)
        return out, created

    def _stale(self, v: ValidationRow, uid: str, prev: Presence | None, observed: datetime) -> Presence:
        """The last known state of an agent whose chunk failed (from memory, else from the store)."""
        if prev is not None:
            return replace(prev, stale=True) if not prev.stale else prev
        u = self._users_by_id().get(uid)
        _, avail, act, msg, ooo = self.store.snapshot(self.account_id).get(uid) or (uid, "", "", "", False)
        known = (self._stored_since or {}).get(uid)
        return Presence(self.account_id, v.item_id, v.normalized_upn, uid, u.display_name if u else "", avail,
                        act, msg, ooo, known[2] if known else observed, stale=True)

    async def _write_back(self, validation: Sequence[ValidationRow], presences: Sequence[Presence],
                          result: CycleResult) -> dict[int, dict[str, str]]:
        by_item = {p.agent_item_id: p for p in presences}
        desired = {
            v.item_id: writeback_values(v, by_item.get(v.item_id), self.columns)
            for v in validation
        }
        pending = self.store.writeback_pending(self.account_id, desired)
        if not pending:
            return {}
        chunk = self._next_writes(pending)
        if self.dry_run:
            return chunk
        try:
            res = await self.roster.write(chunk)
        except GraphError as exc:
            result.error = f"write-back of {len(chunk)} item(s) failed; retried at the next write-back: {exc}"
            return chunk
        ok = {k: v for k, v in chunk.items() if k not in res.failed}
        self.store.mark_written(self.account_id, ok)
        result.written_back = res.written
        if res.failed:
            result.error = (f"{len(res.failed)} item(s) not written back (retried at the next write-back): "
                            + "; ".join(f"item {k}: {v}" for k, v in list(res.failed.items())[:5]))
        return chunk

    def _next_writes(self, pending: Mapping[int, dict[str, str]]) -> dict[int, dict[str, str]]:
        """At most ``writeback_max_items`` items, going round the list so no item waits forever."""
        limit = self.cadence.writeback_max_items
        if len(pending) <= limit:
            self._writeback_cursor = 0
            return dict(pending)
        ids = sorted(pending)
        start = next((n for n, i in enumerate(ids) if i > self._writeback_cursor), 0)
        picked = (ids[start:] + ids[:start])[:limit]
        self._writeback_cursor = picked[-1]
        return {i: pending[i] for i in picked}
