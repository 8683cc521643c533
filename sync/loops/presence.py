"""The presence loop: every ``interval`` seconds, presence for the current targets, nothing else in the way.

A tick takes the Targets snapshot that is current when it starts, sends all of its getPresencesByUserId
chunks at once (paced only by the app's presence budget), turns the replies into Presence rows, and hands
the store diff and the CSV writes to a worker thread. It never waits for the roster, the directory, the
domains or the write-back: those publish new snapshots when they are ready.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from ..errors import LeaseLost, StoreError
from ..graph.client import GraphClient
from ..graph.presence import UNKNOWN, PresenceResult, fetch_presences
from ..http import RequestBudget
from ..models import CycleResult, DirectoryUser, Presence, ValidationRow
from ..outputs.folder import Outputs
from ..store import Store
from .state import AccountState, Targets
from .ticker import Ticker

__all__ = ["PresenceLoop", "cycle_line"]

log = logging.getLogger("sync.cycle")

def cycle_line(r: CycleResult) -> str:
    """The one INFO line per tick and account."""
    text = (f"account {r.account_id}: agents={r.agents} valid={r.valid} resolved={r.resolved} "
            f"presences={r.presences} changes={r.changes} requests={r.requests} 429s={r.throttled} "
            f"duration={r.duration_s:.3f}s")
    if r.stale:
        text += f" stale={r.stale}"
    if r.written_back:
        text += f" written_back={r.written_back}"
    if r.note:
        text += f" ({r.note})"
    return text


class PresenceLoop:
    """Presence of one account's agents on a drift-free schedule."""

    def __init__(self, state: AccountState, graph: GraphClient, store: Store, outputs: Outputs, *,
                 interval: float, deadline: float, display_names: Callable[[], Mapping[str, DirectoryUser]],
                 on_cycle: Callable[[CycleResult], None] | None = None) -> None:
        self.state = state
        self.graph = graph
        self.store = store
        self.outputs = outputs
        self.interval = interval
        self.deadline = deadline  # seconds a failing chunk is retried before its agents go stale
        self.display_names = display_names
        self.on_cycle = on_cycle
        self.ticks = 0
        self._last: dict[int, Presence] = {}  # by Agent-list item id
        self._seq: dict[str, Presence] = {}  # by user id: the latest fresh presence
        self._seq_of: dict[str, str] = {}  # by user id: that presence's sequenceNumber (what fetch compares)
        self._stored_since: dict[str, tuple[str, str, datetime]] | None = None  # from the store (restart)
        self._pending_io: asyncio.Task[None] | None = None

    async def run(self, stop: asyncio.Event, max_ticks: int | None = None) -> None:
        """Ticks until ``stop`` (or ``max_ticks``); the first waits for the first Targets."""
        self.state.presence_running = True
        ready = asyncio.ensure_future(self.state.targets_ready.wait())
        halt = asyncio.ensure_future(stop.wait())
        await asyncio.wait({ready, halt}, return_when=asyncio.FIRST_COMPLETED)
        for f in (ready, halt):
            f.cancel()
        ticker = Ticker(self.interval, stop, catch_up=True)
        while (max_ticks is None or self.ticks < max_ticks) and await ticker.next():
            # A failing chunk is retried only while that still beats the next tick, which asks again anyway:
            # retries that run past it would hold every agent of this tick (and push the next one back).
            try:
                await self.tick(deadline=min(self.deadline, max(0.0, ticker.until_next() - self._margin())))
            except LeaseLost as exc:
                self._lease_paused(exc)
        try:
            await self.flush()
        except LeaseLost as exc:
            self._lease_paused(exc)

    def _lease_paused(self, exc: LeaseLost) -> None:
        """Several replicas: the account's lease may have passed on (a pause, a late renewal), so this tick read
        or wrote nothing. The coordinator stops the account within a round if it did pass on; if the next
        renewal works, the next tick reads again."""
        log.info("account %s: tick skipped: %s", self.state.account_id, exc)

    async def flush(self) -> None:
        """Wait for the last tick's store and CSV writes. Several replicas: a write refused because the lease may
        have passed on raises LeaseLost (the caller skips on); a PostgreSQL store that does not answer (it
        restarts, fails over) is a failure of that tick, not of the loop. Any other store failure ends it."""
        pending, self._pending_io = self._pending_io, None
        if pending is None:
            return
        try:
            await pending
        except LeaseLost:
            raise
        except StoreError as exc:
            if self.store.dialect != "postgresql":
                raise
            self.state.note_failure(f"a presence tick's writes failed: {exc}")

    def _margin(self) -> float:
        """Time kept free before the next tick for a last retry's round trip."""
        return min(0.1 * self.interval, 0.5)

    async def tick(self, deadline: float | None = None) -> CycleResult:
        """One read of every target; a failing chunk is retried for at most ``deadline`` seconds (default: the
        loop's ``deadline``), then its agents are reported stale until a later tick reads them."""
        # Several replicas: no read of an account whose lease may have passed on (say, after a pause).
        self.store.check_lease(self.state.account_id, "a presence read")
        t0 = time.perf_counter()
        targets = self.state.targets
        result = CycleResult(account_id=self.state.account_id, started_at=datetime.now(UTC))
        req0, thr0 = self.graph.counters.snapshot()
        budget = self.graph.budgets.get("presence")
        if not isinstance(budget, RequestBudget):
            budget = None
        waited0 = budget.waited if budget is not None else 0.0
        fetched = await fetch_presences(self.graph, targets.user_ids, known=self._seq_of,
                                        deadline=self.deadline if deadline is None else deadline)
        observed = datetime.now(UTC)
        presences, created = self._presences(targets.rows, fetched, observed)
        per_user = list({p.user_id: p for p in created}.values()) if targets.shared_users else created
        req1, thr1 = self.graph.counters.snapshot()
        result.agents, result.valid, result.resolved = targets.agents, targets.valid, len(targets.rows)
        result.stale = sum(1 for p in presences if p.stale) if fetched.failed_ids else 0
        result.presences = len(presences) - result.stale
        result.requests, result.throttled = req1 - req0, thr1 - thr0
        result.note = self._note(targets, budget, waited0, result.throttled, bool(fetched.failed_ids))
        if fetched.failed_ids:
            result.error = f"{len(fetched.failed_ids)} agent(s) stale: " + "; ".join(fetched.errors[:3])
        self.state.presences = tuple(presences)
        self.state.observed_at = observed
        self.ticks += 1
        # The diff, the history and the CSVs go to a worker thread; the next tick waits only if they overran.
        await self.flush()
        done = self.state.complete_snapshot.set if targets.complete else None
        self._pending_io = asyncio.ensure_future(
            asyncio.to_thread(self._persist, per_user, presences, observed, result, t0))
        if done is not None:
            self._pending_io.add_done_callback(lambda _: done())
        if self.ticks == 1:
            await self.flush()  # the first tick's files exist before anyone looks
        return result

    def _note(self, targets: Targets, budget: RequestBudget | None, waited0: float, throttled: int,
              gave_up: bool) -> str:
        notes = []
        if not targets.complete:
            notes.append("directory still loading: agents resolved so far")
        if budget is None:
            return "; ".join(notes)
        waited = budget.waited - waited0
        if throttled and gave_up:
            notes.append(f"{throttled} call(s) answered 429; the next tick asks again after the Retry-After; "
                         f"{budget.reason}")
        elif throttled:
            notes.append(f"{throttled} call(s) retried after their Retry-After; {budget.reason}")
        elif waited > 0.05:
            notes.append(f"waited {waited:.2f}s for the presence budget: {budget.reason}")
        return "; ".join(notes)

    def _persist(self, per_user: list[Presence], presences: list[Presence], observed: datetime,
                 result: CycleResult, t0: float) -> None:
        changes = self.store.apply_presences(self.state.account_id, per_user)
        result.changes = sum(1 for c in changes if c.from_availability or c.from_activity)  # not first sightings
        result.duration_s = time.perf_counter() - t0
        self.outputs.tick(self.state.account_id, presences, observed, changes)
        self.store.record_cycle(result)
        # Each call's httpx response (about 1 MB of content) and tenacity's retry state sit in reference cycles;
        # the young generations are collected here, so they go now instead of at the next full collection
        # (at 30,000 agents the RSS otherwise climbs by about 7 MB a second between full collections).
        gc.collect(1)
        log.info("%s", cycle_line(result))
        if result.error:
            log.warning("account %s: %s", result.account_id, result.error)
        if self.on_cycle is not None:
            self.on_cycle(result)

    def _presences(self, targets: Sequence[ValidationRow], fetched: PresenceResult,
                   observed: datetime) -> tuple[list[Presence], list[Presence]]:
        """One Presence per target, and those built this tick (the others are last tick's objects).

        ``observed_at`` is when the agent's current state was first seen (what write-back calls PresenceUpdated).
        An unchanged presence (the same ``sequenceNumber``: ``fetched.same``) reuses last tick's object, so the
        hot path costs a set lookup and a dict lookup per agent. Failed chunks repeat the last known values,
        marked stale.
        """
        out: list[Presence] = []
        created: list[Presence] = []
        append = out.append
        last, by_uid, acc = self._last, self._seq, self.state.account_id
        names: Mapping[str, DirectoryUser] | None = None
        if self._stored_since is None:  # after a restart, "since" comes from the stored history
            self._stored_since = {c.user_id: (c.to_availability, c.to_activity, c.changed_at)
                                  for c in self.store.snapshots([acc])}
        stored = self._stored_since
        item_of, last_of, same, failed = fetched.by_id.get, last.get, fetched.same, fetched.failed_ids
        for v in targets:
            uid = v.user_id or ""
            prev = last_of(v.item_id)
            if prev is not None and (prev.user_id != uid or prev.upn != v.normalized_upn):
                prev = None  # the item now names another user
            if uid in same:
                if prev is not None and not prev.stale:
                    append(prev)  # unchanged: last tick's object
                    continue
                known = by_uid[uid]  # another item of the same user, or this one before it went stale
                p = replace(known, agent_item_id=v.item_id, upn=v.normalized_upn, stale=False)
                last[v.item_id] = p
                append(p)
                continue
            item = item_of(uid)
            if names is None:
                names = self.display_names()
            if item is None:
                if uid in failed:
                    append(self._stale(v, uid, prev, observed, names))
                    continue
                item = UNKNOWN  # Graph left the id out: it has no presence to report
            seq, avail, act, msg, ooo = item
            if prev is not None and not prev.stale:
                since = prev.observed_at if (prev.availability, prev.activity) == (avail, act) else observed
            else:
                known_state = stored.get(uid)
                since = known_state[2] if known_state and known_state[:2] == (avail, act) else observed
            u = names.get(uid)
            p = Presence(acc, v.item_id, v.normalized_upn, uid, u.display_name if u else "", avail, act, msg, ooo,
                         since, sequence_number=seq)
            last[v.item_id] = p
            if seq:
                by_uid[uid] = p
                self._seq_of[uid] = seq
            append(p)
            created.append(p)
        return out, created

    def _stale(self, v: ValidationRow, uid: str, prev: Presence | None, observed: datetime,
               names: Mapping[str, DirectoryUser]) -> Presence:
        """The last known state of an agent whose chunk failed (from memory, else from the store)."""
        if prev is not None:
            return replace(prev, stale=True) if not prev.stale else prev
        _, avail, act, msg, ooo = self.store.snapshot(self.state.account_id).get(uid) or (uid, "", "", "", False)
        known = (self._stored_since or {}).get(uid)
        u = names.get(uid)
        return Presence(self.state.account_id, v.item_id, v.normalized_upn, uid, u.display_name if u else "", avail,
                        act, msg, ooo, known[2] if known else observed, stale=True)
