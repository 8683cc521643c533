"""The roster loop: the Agent list and the directory, validated, published as the presence loop's Targets.

Every ``interval`` seconds (and when the domains change) it re-reads the Agent list and, beside it, the
directory changes since the last deltaLink; validates every cell; looks up UPNs still missing from the cache;
saves the verdicts and publishes a new Targets snapshot. Heavy work (SQLite, index builds, validation) runs in
worker threads, so the presence loop on the event loop keeps its schedule.

Cold start (no deltaLink yet): a delta cursor is opened first, then the Agent list and the whole directory are
read at once, by the fastest shape the tenant accepts (``graph/directory.py``). While pages arrive, agents whose
UPN is known are published (``Targets.complete`` False); when the read is slow, falls back or fails, exact
lookups resolve the agents (``lookups.py``), so presence starts within seconds whatever the directory does. The
full verdicts follow when the read is done, and the cursor catches what changed meanwhile. A restart with a
cache publishes the stored verdicts at once and refreshes them in the background.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Protocol

from ..errors import GraphError, PermanentGraphError, RosterError
from ..graph.client import GraphClient
from ..graph.directory import (
    DeltaResult,
    follow_delta,
    full_delta_round,
    lookup_users,
    open_delta_cursor,
    partitions_for,
    read_all_users,
    same_endpoint,
)
from ..http import Pacer, RequestBudget
from ..memory import release_memory
from ..models import AgentRow, DirectoryUser, ValidationRow, WriteResult
from ..outputs.folder import Outputs
from ..store import Store
from ..validation import DirectoryIndex, Validator, Verdict, normalize, resolved_so_far
from .lookups import agent_list, early_lookups
from .progress import DirectoryProgress, LogProgress
from .state import AccountState, Targets

__all__ = ["DirectoryProgress", "LogProgress", "RosterLoop", "RosterSource"]

log = logging.getLogger(__name__)

LOOKUP_RATE = 1000  # users looked up per 10 s during a cold start: well under the directory's own limits
FAST_READS = ("startswith", "ranges", "advanced")  # directory read shapes that finish in seconds


class RosterSource(Protocol):
    async def read(self) -> list[AgentRow]: ...
    async def write(self, updates: Mapping[int, Mapping[str, str]]) -> WriteResult: ...


class RosterLoop:
    def __init__(self, state: AccountState, graph: GraphClient, roster: RosterSource, store: Store,
                 outputs: Outputs | None, *, interval: float, lookup_limit: int = 400,
                 progress: DirectoryProgress | None = None, partial_every: float = 1.0,
                 snapshot_grace: float = 10.0, lookup_after: float = 3.0, lookup_pace: Pacer | None = None) -> None:
        self.state = state
        self.graph = graph
        self.roster = roster
        self.store = store
        self.outputs = outputs
        self.interval = interval
        self.lookup_limit = lookup_limit
        self.progress = progress or LogProgress()
        self.partial_every = partial_every
        self.snapshot_grace = snapshot_grace  # seconds a cold start's directory save waits for presence
        # A cold start whose directory read is not done this long after the Agent list arrived (at once when the
        # read fell back to a slow shape) looks its agents up one by one, at the pace of ``lookup_pace``.
        self.lookup_after = lookup_after
        self.lookup_pace = lookup_pace or RequestBudget(LOOKUP_RATE, 10.0)
        self.rows: list[AgentRow] = []
        self.index: DirectoryIndex | None = None
        self._index_version = -1
        self._validator: Validator | None = None
        self._validator_key = (-1, -1)
        self._looked_up: set[str] = set()
        self._cold_index: DirectoryIndex | None = None  # a failed cold start's partial directory
        self._cold_lookups: asyncio.Future[None] | None = None  # its exact lookups, still running
        self._version = 0

    @property
    def account_id(self) -> str:
        return self.state.account_id

    def users_by_id(self) -> Mapping[str, DirectoryUser]:
        """The directory by user id (display names for presence rows), as far as it is known."""
        return self.index.by_id if self.index is not None else {}

    # --- the loop ----------------------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        self.publish_stored()
        start = time.monotonic()
        n = 0
        while not stop.is_set():
            try:
                await self.step()
            except (GraphError, RosterError) as exc:
                self.state.note_failure(f"Agent list or directory refresh failed (retried in "
                                        f"{self.interval:g} s): {exc}")
            n += 1
            due = start + n * self.interval
            while time.monotonic() < due:
                waiter = asyncio.ensure_future(self.state.domains_changed.wait())
                halt = asyncio.ensure_future(stop.wait())
                await asyncio.wait({waiter, halt}, timeout=due - time.monotonic(),
                                   return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                halt.cancel()
                if stop.is_set():
                    return
                if self.state.domains_changed.is_set():
                    self.state.domains_changed.clear()
                    await self.revalidate()
            if time.monotonic() - due > self.interval:  # a slow step: carry on from now
                start, n = time.monotonic(), 0

    def publish_stored(self) -> None:
        """After a restart, the stored verdicts are the targets until the first refresh is done."""
        if self.state.targets_ready.is_set() or self.store.get_delta_link(self.account_id) is None:
            return
        stored = self.store.load_validation(self.account_id)
        if stored:
            self._version += 1
            self.state.publish_targets(Targets.of(stored, version=self._version))

    async def step(self) -> list[ValidationRow]:
        """One refresh: Agent list + directory, validation, lookups, published."""
        if not self.state.domains_ready.is_set():
            await self.state.domains_ready.wait()
        link = self.store.get_delta_link(self.account_id)
        if link and not same_endpoint(self.graph, link):
            log.info("account %s: the saved delta link is for another Graph endpoint; re-reading the directory",
                     self.account_id)
            link = None
        read: list[AgentRow] | None = None
        if link:
            read, delta = await asyncio.gather(self._read_roster(), self._follow(link))
            if delta is not None:
                await self._absorb(delta)
                return await self.revalidate(read, lookups=True)
        # Cold start: publish from the directory in memory first, store it afterwards.
        users, cursor, rows = await self._cold_start(read)
        validation = await self.revalidate(rows, save=False)
        # Storing 100,000 users and 30,000 verdicts takes seconds of CPU: the first complete presence snapshot
        # goes first.
        if self.state.presence_running:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.state.complete_snapshot.wait(), timeout=self.snapshot_grace)
        await asyncio.to_thread(self._save_validation, validation)
        if not isinstance(cursor, str):  # $deltatoken=latest was refused: the full delta round beside the read
            round_ = await cursor
            users, cursor = round_.upserts, round_.delta_link  # as complete as the read, and its own cursor
        await asyncio.to_thread(self._save_directory, users, cursor)
        del users
        await asyncio.to_thread(release_memory)  # the read's pages and rows are garbage now
        self._index_version = self.store.directory_version(self.account_id)
        self._validator_key = (self.state.domains_version, self._index_version)
        caught_up = await self._follow(cursor)  # what changed while we read
        if caught_up is not None:
            await self._absorb(caught_up)
        else:
            await self._load_index()
        return await self.revalidate(lookups=True)

    async def _absorb(self, delta: DeltaResult) -> None:
        """Store a delta round and bring the index up to date: new users are added to it in place, anything
        else (renames, removals) rebuilds it from the store."""
        known = self.index.by_id if self.index is not None else {}
        only_new = not delta.removed and not any(u.id in known for u in delta.upserts)
        if not await asyncio.to_thread(self._apply_delta, delta):
            return
        if self.index is not None and only_new:
            self.index.add(delta.upserts)
            self._index_version = self.store.directory_version(self.account_id)
            self._validator = None
        else:
            await self._load_index()

    async def revalidate(self, rows: list[AgentRow] | None = None, lookups: bool = False,
                         save: bool = True) -> list[ValidationRow]:
        """Validate the roster against the current domains and directory and publish the result (``save``: also
        to the store and validation.csv); with ``lookups``, then look up UPNs missing from the cache and
        publish again if that found anyone."""
        if rows is not None:
            self.rows = rows
        if self.index is None:
            await self._load_index()
        validation = await asyncio.to_thread(self._validator_for().validate, self.rows)
        await self._publish(validation, save)
        if lookups and await self._resolve_missing(validation):
            validation = await asyncio.to_thread(self._validator_for().validate, self.rows)
            await self._publish(validation)
        return validation

    # --- reading -----------------------------------------------------------------------------------------------

    async def _read_roster(self) -> list[AgentRow]:
        try:
            return self._keep_unchanged(await self.roster.read())
        except (GraphError, RosterError) as exc:
            if not self.rows:
                raise RosterError(f"the Agent list could not be read: {exc}") from exc
            log.warning("account %s: Agent list re-read failed, using the last copy: %s", self.account_id, exc)
            return self.rows

    def _keep_unchanged(self, rows: list[AgentRow]) -> list[AgentRow]:
        """Last read's row objects where the cell did not change: the new copies die at once, and an unchanged
        list is the very same objects, which the validator recognises without looking at a cell."""
        old = {r.item_id: r for r in self.rows}
        if not old:
            return rows
        out = []
        for r in rows:
            o = old.get(r.item_id)
            out.append(o if o is not None and o.raw_upn == r.raw_upn else r)
        return out

    async def _follow(self, link: str) -> DeltaResult | None:
        """The changes since ``link``; None when Graph no longer knows the token (a full read follows)."""
        try:
            return await follow_delta(self.graph, link)
        except PermanentGraphError as exc:
            if exc.status in (400, 410) or "syncState" in (exc.code or ""):
                log.warning("account %s: delta token rejected (%s); re-reading the whole directory",
                            self.account_id, exc.code or exc.status)
                return None
            raise

    def _apply_delta(self, delta: DeltaResult) -> bool:
        """Store the changes (worker thread); True when the directory changed."""
        acc = self.account_id
        if delta.upserts:
            self.store.upsert_users(acc, delta.upserts)
        if delta.removed:
            self.store.delete_users(acc, delta.removed)
        self.store.set_delta_link(acc, delta.delta_link)
        return bool(delta.upserts or delta.removed)

    async def _cold_start(self, rows: list[AgentRow] | None
                          ) -> tuple[list[DirectoryUser], str | asyncio.Future[DeltaResult], list[AgentRow]]:
        """The whole directory from scratch, beside the Agent list; agents are published as they resolve, from
        the read's pages and, when the read is slow, from exact lookups. Returns the users, the cursor (or the
        full delta round that will give it) and the Agent list."""
        t0 = time.monotonic()
        acc = self.account_id
        roster_task = asyncio.ensure_future(self._read_roster()) if rows is None else None
        # After a failed read, the users its lookups found (and the lookups still running) carry on.
        index = self._cold_index or DirectoryIndex()
        self.index, self._validator, self._cold_index = index, None, index
        memo: dict[str | None, str | Verdict] = {}
        seen = {"users": 0, "partitions": 0}
        published = [t0]  # a directory read in under ``partial_every`` seconds is published whole
        read_done = asyncio.Event()

        def ready_rows() -> list[AgentRow] | None:
            if rows is not None:
                return rows
            if roster_task is not None and roster_task.done() and not roster_task.exception():
                return roster_task.result()
            return None

        def publish(force: bool = False) -> None:
            ready = ready_rows()
            if ready is not None and (force or time.monotonic() - published[0] >= self.partial_every):
                published[0] = time.monotonic()
                self._publish_partial(ready, index, memo)

        def on_page(users: list[DirectoryUser], last: bool) -> None:
            index.add([u for u in users if u.id not in index.by_id])
            seen["users"] += len(users)
            seen["partitions"] += last
            self.progress.advance(acc, seen["users"], seen["partitions"])
            publish()

        lookups = self._cold_lookups
        if lookups is None or lookups.done():
            lookups = asyncio.ensure_future(early_lookups(
                self.graph, agent_list(roster_task, rows), index, read_done, publish, pace=self.lookup_pace,
                wait=self.lookup_after if self.graph.shapes.current("directory") in FAST_READS else 0.0))
            self._cold_lookups = lookups
        cursor: str | asyncio.Future[DeltaResult] | None = None
        try:
            # Before the read, so nothing that changes meanwhile is lost.
            cursor = await open_delta_cursor(self.graph)
            if cursor is None:
                cursor = asyncio.ensure_future(full_delta_round(self.graph))
            self.progress.start(acc, partitions_for(self.graph.shapes.current("directory")))
            users, link = await read_all_users(self.graph, on_page=on_page)
            if link is not None:  # the read was a delta round: it is its own cursor
                if isinstance(cursor, asyncio.Future):
                    cursor.cancel()
                cursor = link
            if roster_task is not None:
                rows = await roster_task
        except asyncio.CancelledError:  # the job stops: nothing of this read carries on
            for task in (cursor, roster_task, lookups):
                if isinstance(task, asyncio.Future):
                    task.cancel()
            self._cold_index = self._cold_lookups = None
            raise
        except Exception:
            if isinstance(cursor, asyncio.Future):
                cursor.cancel()
            if roster_task is not None and not roster_task.done():
                with contextlib.suppress(Exception):
                    await roster_task  # the lookups resolve the Agent list while the read is retried
            publish(True)
            raise
        read_done.set()
        lookups.cancel()
        self._cold_index = self._cold_lookups = None
        assert rows is not None and cursor is not None
        self.progress.finish(acc, len(users), time.monotonic() - t0)
        self._index_version = -2  # in memory only until _save_directory; the validator is keyed on it
        await asyncio.to_thread(release_memory)  # the pages' JSON is garbage now: room for the first full tick
        return users, cursor, rows

    def _save_directory(self, users: list[DirectoryUser], cursor: str) -> None:
        self.store.reset_directory(self.account_id)
        self.store.upsert_users(self.account_id, users)
        self.store.set_delta_link(self.account_id, cursor)

    def _publish_partial(self, rows: Sequence[AgentRow], index: DirectoryIndex,
                         memo: dict[str | None, str | Verdict]) -> None:
        if self.state.domains is None or (self.state.targets_ready.is_set() and self.state.targets.complete):
            return
        found = resolved_so_far(rows, self.state.domains, index, memo)
        self._version += 1
        self.state.publish_targets(replace(Targets.of(found, complete=False, version=self._version),
                                           agents=len(rows)))

    async def _load_index(self) -> None:
        version = self.store.directory_version(self.account_id)
        if self.index is not None and version == self._index_version:
            return

        def build() -> DirectoryIndex:
            return DirectoryIndex.build(self.store.load_directory(self.account_id))
        self.index = await asyncio.to_thread(build)
        self._index_version = version
        self._validator = None

    def _validator_for(self) -> Validator:
        assert self.state.domains is not None and self.index is not None
        key = (self.state.domains_version, self._index_version)
        if self._validator is None or key != self._validator_key:
            self._validator = Validator(self.state.domains, self.index)
            self._validator_key = key
        return self._validator

    async def _resolve_missing(self, rows: Sequence[ValidationRow]) -> bool:
        """Look up NOT_FOUND UPNs that may be newer than the cache; True when the cache grew."""
        missing: list[str] = []
        for r in rows:
            if "NOT_FOUND" in r.codes:
                value = normalize(r.raw_upn)[0]
                if value and value not in self._looked_up:
                    missing.append(value)
        missing = list(dict.fromkeys(missing))[: self.lookup_limit]
        if not missing:
            return False
        self._looked_up.update(missing)
        found = await lookup_users(self.graph, missing)
        users = [u for u in found.values() if u is not None]
        if users:
            await asyncio.to_thread(self.store.upsert_users, self.account_id, users)
            if self.index is not None:
                self.index.add(users)
                self._index_version = self.store.directory_version(self.account_id)
                self._validator = None
        return bool(users)

    async def _publish(self, validation: list[ValidationRow], save: bool = True) -> None:
        if validation != list(self.state.validation) or not self.state.targets.complete:
            self._version += 1
            self.state.publish_targets(Targets.of(validation, version=self._version))
            self.state.validation = tuple(validation)
            if save:
                await asyncio.to_thread(self._save_validation, validation)
        elif not self.state.targets_ready.is_set():
            self.state.publish_targets(self.state.targets)

    def _save_validation(self, validation: list[ValidationRow]) -> None:
        self.store.save_validation(self.account_id, validation)
        if self.outputs is not None:
            self.outputs.set_validation(self.account_id, validation)
