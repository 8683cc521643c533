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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from .errors import GraphError, RosterError
from .graph.client import GraphClient
from .graph.directory import fetch_domains, lookup_users, sync_delta
from .graph.lists import WriteResult
from .graph.presence import fetch_presences
from .models import AgentRow, Change, CycleResult, Presence, ValidationRow
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
    lookup_limit: int = 400  # UPNs missing from the cache looked up per roster refresh


@dataclass
class CycleOutput:
    result: CycleResult
    presences: list[Presence]
    changes: list[Change]
    validation: list[ValidationRow]
    validation_changed: bool
    planned_writes: dict[int, dict[str, str]] = field(default_factory=dict)


def iso_z(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def upn_status_text(v: ValidationRow) -> str:
    return v.status if not v.codes else f"{v.status}: {', '.join(v.codes)}"


def writeback_values(v: ValidationRow, p: Presence | None, changed_at: datetime | None,
                     cols: WriteBackColumns) -> dict[str, str]:
    """The column values one Agent-list item should hold."""
    out = {cols.upn_status: upn_status_text(v)}
    if p is not None and not p.stale:
        out[cols.availability] = p.availability
        out[cols.activity] = p.activity
        out[cols.presence_updated] = iso_z(changed_at or p.observed_at)
    return out


def _text(msg: Any) -> str:
    if isinstance(msg, dict):
        inner = msg.get("message")
        if isinstance(inner, dict):
            return str(inner.get("content") or "")
    return ""


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
    _users: dict[str, Any] = field(default_factory=dict)  # id -> DirectoryUser
    _looked_up: set[str] = field(default_factory=set)
    _last_presence: dict[str, Presence] = field(default_factory=dict)
    _since: dict[str, datetime] = field(default_factory=dict)  # user id -> when the current state began
    _stored_since: dict[str, tuple[str, str, datetime]] | None = None  # the store's last transitions (restart)
    _writeback_at: float = -1e18

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
            users = self.store.load_directory(self.account_id)
            self._users = {u.id: u for u in users}
            self._validator = Validator(self._domains, DirectoryIndex.build(users))
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
        if not force and self._rows and now - self._roster_at < self.cadence.roster_interval:
            return False
        try:
            self._rows = await self.roster.read()
        except GraphError as exc:
            if not self._rows:
                raise RosterError(f"the Agent list could not be read: {exc}") from exc
            log.warning("account %s: Agent list re-read failed, using the last copy: %s", self.account_id, exc)
            return False
        await self._refresh_directory()
        self._roster_at = now
        self._looked_up.clear()
        return True

    def _validate(self) -> list[ValidationRow]:
        return self._validator_for().validate(self._rows)

    async def validate_only(self) -> list[ValidationRow]:
        """Roster, domains and directory only: the data-quality verdict without fetching presence."""
        mono = time.monotonic()
        await self._refresh_domains(mono)
        await self._refresh_roster(mono, True)
        validation = self._validate()
        if await self._resolve_missing(validation):
            validation = self._validate()
        self.store.save_validation(self.account_id, validation)
        self._validation = validation
        return validation

    async def run_cycle(self, *, force_refresh: bool = False, final: bool = False) -> CycleOutput:
        t0 = time.perf_counter()
        started = datetime.now(UTC)
        req0, thr0 = self.graph.counters.snapshot()
        ext0 = self.extra_requests() if self.extra_requests else 0
        result = CycleResult(account_id=self.account_id, started_at=started)
        mono = time.monotonic()
        await self._refresh_domains(mono)
        refreshed = await self._refresh_roster(mono, force_refresh)
        validation = self._validate()
        if refreshed and await self._resolve_missing(validation):
            validation = self._validate()
        validation_changed = validation != self._validation
        if validation_changed:
            self.store.save_validation(self.account_id, validation)
        self._validation = validation

        targets = [v for v in validation if v.collectable and v.user_id]
        fetched = await fetch_presences(self.graph, [v.user_id for v in targets if v.user_id])
        observed = datetime.now(UTC)
        presences = self._presences(targets, fetched.by_id, fetched.failed_ids, observed)
        changes = self.store.apply_presences(self.account_id, list({p.user_id: p for p in presences}.values()))

        planned: dict[int, dict[str, str]] = {}
        due = final or time.monotonic() - self._writeback_at >= self.cadence.writeback_interval
        if self.writeback_enabled and due:
            planned = await self._write_back(validation, presences, result)
            self._writeback_at = time.monotonic()

        req1, thr1 = self.graph.counters.snapshot()
        ext1 = self.extra_requests() if self.extra_requests else 0
        result.agents = len(validation)
        result.valid = sum(1 for v in validation if v.collectable)
        result.resolved = len(targets)
        result.presences = sum(1 for p in presences if not p.stale)
        result.stale = sum(1 for p in presences if p.stale)
        result.changes = sum(1 for c in changes if c.from_availability or c.from_activity)  # not first sightings
        result.requests = (req1 - req0) + (ext1 - ext0)
        result.throttled = thr1 - thr0
        result.duration_s = time.perf_counter() - t0
        if fetched.failed_ids:
            result.error = f"{len(fetched.failed_ids)} agent(s) stale: " + "; ".join(fetched.errors[:3])
        self.store.record_cycle(result)
        return CycleOutput(result, presences, changes, validation, validation_changed, planned)

    def _presences(self, targets: Sequence[ValidationRow], by_id: Mapping[str, dict[str, Any]],
                   failed: set[str], observed: datetime) -> list[Presence]:
        """One Presence per collectable agent; failed chunks repeat the last known values, marked stale."""
        out: list[Presence] = []
        last, since, users, acc = self._last_presence, self._since, self._users, self.account_id
        if self._stored_since is None:  # after a restart, "since" (PresenceUpdated) comes from the history
            self._stored_since = {c.user_id: (c.to_availability, c.to_activity, c.changed_at)
                                  for c in self.store.snapshots([acc])}
        stored = self._stored_since
        for v in targets:
            uid = v.user_id or ""
            item = by_id.get(uid)
            prev = last.get(uid)
            if item is None and uid in failed:
                if prev is not None:
                    out.append(Presence(acc, v.item_id, v.normalized_upn, uid, prev.display_name, prev.availability,
                                        prev.activity, prev.status_message, prev.out_of_office, prev.observed_at,
                                        stale=True, sequence_number=prev.sequence_number))
                else:  # first cycle after a restart: the last known state is in the store
                    u = users.get(uid)
                    known_state = self.store.snapshot(acc).get(uid)
                    known = stored.get(uid)
                    _, avail, act, msg, ooo_flag = known_state or (uid, "", "", "", False)
                    out.append(Presence(acc, v.item_id, v.normalized_upn, uid, u.display_name if u else "",
                                        avail, act, msg, ooo_flag, known[2] if known else observed, stale=True))
                continue
            if item is None:  # Graph left the id out: it has no presence to report
                item = {"availability": "PresenceUnknown", "activity": "PresenceUnknown"}
            u = users.get(uid)
            ooo = item.get("outOfOfficeSettings") or {}
            p = Presence(acc, v.item_id, v.normalized_upn, uid, u.display_name if u else "",
                         str(item.get("availability") or "PresenceUnknown"),
                         str(item.get("activity") or "PresenceUnknown"), _text(item.get("statusMessage")),
                         bool(ooo.get("isOutOfOffice")), observed,
                         sequence_number=str(item.get("sequenceNumber") or ""))
            if prev is None:
                known = stored.get(uid)
                since[uid] = known[2] if known and known[:2] == (p.availability, p.activity) else observed
            elif prev.availability != p.availability or prev.activity != p.activity:
                since[uid] = observed
            last[uid] = p
            out.append(p)
        return out

    async def _write_back(self, validation: Sequence[ValidationRow], presences: Sequence[Presence],
                          result: CycleResult) -> dict[int, dict[str, str]]:
        by_item = {p.agent_item_id: p for p in presences}
        desired = {
            v.item_id: writeback_values(v, by_item.get(v.item_id),
                                        self._since.get(v.user_id or ""), self.columns)
            for v in validation
        }
        pending = self.store.writeback_pending(self.account_id, desired)
        if not pending:
            return {}
        if self.dry_run:
            return dict(pending)
        try:
            res = await self.roster.write(pending)
        except GraphError as exc:
            log.warning("account %s: write-back of %d item(s) failed: %s", self.account_id, len(pending), exc)
            result.error = f"write-back failed: {exc}"
            return dict(pending)
        ok = {k: v for k, v in pending.items() if k not in res.failed}
        self.store.mark_written(self.account_id, ok)
        result.written_back = res.written
        if res.failed:
            log.warning("account %s: %d item(s) not written back: %s", self.account_id, len(res.failed),
                        "; ".join(f"item {k}: {v}" for k, v in list(res.failed.items())[:5]))
        return dict(pending)
