"""One replica's lease round, every ``renew_every`` seconds (2 s by default, three per 6 s TTL):

1. heartbeat, then renew every held lease. A renewal refused (the lease expired or passed to another replica)
   stops that account at once; a renewal that fails or hangs (the database is unreachable) stops every held
   account at once, because this replica can no longer prove it holds them before their TTL runs out;
2. read the live replicas and compute this replica's share (after a failed round, the first good one only
   heartbeats, so that replicas coming back from an outage count each other) (``plan.share``): above it, hand accounts over (their
   loops finish their writes, then the lease is released); below it, take free or expired leases.

``take(account, token, until)``, ``extend(account, until)`` and ``drop(account, graceful)`` are the scheduler's
side: start an account's loops with the store fenced by ``token``, move the moment by this replica's own clock
(``time.monotonic()``) after which the lease may have passed to another replica (the TTL counted from before the
statement that took or renewed it, less a margin: writes to the store, the CSVs and SharePoint stop there even
when no renewal failed, say after a pause), or stop them (``graceful``: let the writes in flight finish first; else
refuse the store's writes for the account at once, then stop). ``leave()`` is the SIGTERM path: every account
is handed over, then the replica's row is deleted so the others' shares grow at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any, TypeVar

from sync.errors import StoreError

from .leases import DEFAULT_RENEW, LeaseBook, LeaseListener
from .plan import decide, share

__all__ = ["Coordinator"]

T = TypeVar("T")

log = logging.getLogger(__name__)

Take = Callable[[str, int, float], Awaitable[None]]
Extend = Callable[[str, float], None]
Drop = Callable[[str, bool], Awaitable[None]]


class Coordinator:
    def __init__(self, book: LeaseBook, accounts: Sequence[str], take: Take, drop: Drop, *,
                 extend: Extend | None = None, renew_every: float = DEFAULT_RENEW) -> None:
        self.book, self.accounts = book, list(accounts)
        self.take, self.drop = take, drop
        self.extend = extend
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="leases")
        self._handing: set[asyncio.Future[None]] = set()  # hand-overs to balance the spread, under way
        self._releasing: set[str] = set()  # their accounts
        self.renew_every = renew_every
        self.held: dict[str, int] = {}  # account -> fencing token
        self.changes = 0  # leases taken or given up by this replica (metrics)
        self.renewal_seconds: list[float] = []  # the last rounds' renewal latency (metrics)
        self.failing = ""  # why the last round failed ("" when it worked)
        self.leaving = False  # SIGTERM: every account is being handed over
        self._failed_at: float | None = None  # when the rounds began to fail
        self._lenient = (0.0, 0.0)  # after an outage: until when, and how far back a heartbeat counts as live

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        """A lease statement on this replica's own thread: the store's calls (which may each wait seconds for a
        pooled connection while the database is away) fill the default executor, and must never hold a
        renewal back."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, partial(fn, *args))

    @property
    def replica_id(self) -> str:
        return self.book.id

    async def run(self, stop: asyncio.Event) -> None:
        """Lease rounds until ``stop``; then ``leave()`` is the caller's. A round also starts at once when another
        replica released a lease, joined or left (LISTEN/NOTIFY), so a handover does not wait for a renewal."""
        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def changed() -> None:  # the listener's thread
            loop.call_soon_threadsafe(wake.set)

        listener = LeaseListener(self.book.url, self.book.id, changed).start()
        try:
            await self._rounds(stop, wake)
        finally:
            await asyncio.to_thread(listener.close)

    async def _rounds(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        while not stop.is_set():
            wake.clear()
            started = time.monotonic()
            try:
                # A round that cannot finish inside a renewal interval cannot prove the leases either.
                if self.failing:
                    # Back after an outage: every replica's heartbeat is stale, so one that counted the live
                    # replicas now would see itself alone and take every account. Heartbeat first; take next
                    # round, and for a TTL count as live every replica that beat during the outage's length too
                    # (the others come back at their own pace; one that died meanwhile drops out after it).
                    await asyncio.wait_for(self._call(self.book.heartbeat), timeout=self.renew_every * 1.5)
                    down = time.monotonic() - (self._failed_at or time.monotonic())
                    self._lenient = (time.monotonic() + self.book.ttl, self.book.ttl + down + self.renew_every)
                    log.info("replica %s: the lease database answers again (after %.1f s)", self.book.id, down)
                else:
                    await asyncio.wait_for(self._round(), timeout=self.renew_every * 1.5)
                self.failing = ""
            except (StoreError, TimeoutError) as exc:
                why = str(exc) if isinstance(exc, StoreError) else "a lease round did not finish in time"
                if why != self.failing:
                    log.error("replica %s: %s; stopping its %d account(s) until the database answers again",
                              self.book.id, why, len(self.held))
                if not self.failing:
                    self._failed_at = time.monotonic()
                self.failing = why
                await self._drop_all(graceful=False)
            left = self.renew_every - (time.monotonic() - started)
            waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
            try:
                await asyncio.wait(waits, timeout=max(0.05, left), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waits:
                    w.cancel()

    async def _round(self) -> None:
        book = self.book
        await self._call(book.ensure, self.accounts)
        t0 = time.monotonic()
        await self._call(book.heartbeat)
        for account, token in list(self.held.items()):
            asked = time.monotonic()
            if await self._call(book.renew, account, token):
                if self.extend is not None:
                    self.extend(account, self._until(asked))
            elif self.held.get(account) != token:
                continue  # handed over meanwhile (this replica is leaving)
            else:
                log.error("replica %s: lost account %s (lease token %d expired or was taken over); stopped it",
                          book.id, account, token)
                del self.held[account]
                self.changes += 1
                await self.drop(account, False)
        self.renewal_seconds = (self.renewal_seconds + [time.monotonic() - t0])[-50:]
        if self.leaving:
            return  # handing everything over: nothing is taken again
        until, window = self._lenient
        live = await self._call(book.live_replicas, window if time.monotonic() < until else None)
        quota = share(len(self.accounts), live, book.id)
        leases = await self._call(book.leases, self.accounts)
        free = [ls.account for ls in leases if ls.account not in self._releasing and (
                ls.holder is None or ls.expires_in is None or ls.expires_in <= 0 or ls.holder == book.id)]
        release, take = decide(self.held, free, quota)
        for account in release:  # in the background: waiting for its loops must not hold this round's renewals
            task = asyncio.ensure_future(self._hand_over(account, f"share of {quota} with {len(live)} replica(s)",
                                                         self.held.pop(account)))
            self._handing.add(task)
            task.add_done_callback(self._handing.discard)
        async def one(account: str) -> None:
            asked = time.monotonic()
            got: int | None = await self._call(book.acquire, account)
            if got is None:
                return  # another replica was faster
            self.held[account] = token = got
            self.changes += 1
            log.info("replica %s: took account %s (lease token %d; %d of %d account(s), %d replica(s))",
                     book.id, account, token, len(self.held), len(self.accounts), len(live))
            await self.take(account, token, self._until(asked))

        await asyncio.gather(*(one(account) for account in take))  # each starts as soon as it is taken

    def _until(self, asked: float) -> float:
        """The lease set by a statement sent at ``asked`` lives a TTL from the server's now, which is later:
        by this replica's clock it cannot pass to another replica before ``asked + ttl`` (less a margin for
        clocks that run at slightly different rates)."""
        return asked + self.book.ttl - min(1.0, self.book.ttl * 0.1)

    async def _hand_over(self, account: str, why: str, token: int | None = None) -> None:
        """Stop the account's loops (their writes finish), then release its lease; ``token``: already taken out
        of ``held`` by the caller."""
        if token is None:
            token = self.held.pop(account)
        self.changes += 1
        self._releasing.add(account)  # not taken back while its loops stop
        try:
            await self.drop(account, True)  # its writes finish first
            await self._call(self.book.release, account, token)
            log.info("replica %s: handed account %s over (%s)", self.book.id, account, why)
        except StoreError as exc:  # it expires on its own within a TTL
            log.warning("replica %s: account %s stopped, but its lease could not be released (%s); it expires "
                        "within %g s", self.book.id, account, exc, self.book.ttl)
        finally:
            self._releasing.discard(account)

    async def _drop_all(self, graceful: bool) -> None:
        for account in list(self.held):
            del self.held[account]
            self.changes += 1
            await self.drop(account, graceful)

    async def hand_over_all(self) -> None:
        """SIGTERM: every account handed over at once, each as soon as its own loops finished their writes;
        nothing is taken again."""
        self.leaving = True
        await asyncio.gather(*self._handing, *(self._hand_over(account, "this replica stops")
                                               for account in list(self.held)))

    async def leave(self) -> None:
        """Hand every account over and deregister; what cannot be released expires within a TTL."""
        await self.hand_over_all()
        try:
            await self._call(self.book.leave)
        except StoreError as exc:
            log.warning("replica %s: could not deregister (%s); the others stop counting it within %g s",
                        self.book.id, exc, self.book.ttl)
        await self._call(self.book.close)
        self._pool.shutdown(wait=False)
