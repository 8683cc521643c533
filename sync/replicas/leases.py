"""The replicas and leases tables (schema version 6 of the PostgreSQL store), judged by the database's clock.

A lease row per account: ``holder`` (a replica id or NULL), ``token`` (the fencing token: raised by one on every
change of holder, never lowered) and ``expires_at``. It is taken under ``SELECT ... FOR UPDATE`` when it is free
or expired, renewed only by its holder with its token while it has not expired, and released by its holder. All
times are the server's ``now()``: no replica's clock decides who holds what. Every store write of an account
checks the writer's token in the same transaction (``PostgresBackend.fence``), so a replica that lost its lease
(paused, partitioned, slow) cannot write after the new holder took over.

The book has its own connection, apart from the store's pool, so a long store write never delays a renewal.
Each statement is bounded (``statement_timeout``), and a broken connection is opened again on the next call.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sync.errors import StoreError
from sync.store.backend import redact_url

__all__ = ["CHANNEL", "DEFAULT_RENEW", "DEFAULT_TTL", "Lease", "LeaseBook", "LeaseListener", "Replica",
           "new_replica_id"]

DEFAULT_TTL = 6.0  # seconds a lease lives without renewal
DEFAULT_RENEW = 2.0  # seconds between renewals: three per TTL
log = logging.getLogger(__name__)

CHANNEL = "presence_sync_leases"  # NOTIFY channel: a lease was released, a replica joined or left (payload: its id)


def new_replica_id() -> str:
    """``<host>-<pid>-<random>``: unique per process start, readable in `status`."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Lease:
    account: str
    holder: str | None
    token: int
    expires_in: float | None  # seconds from the server's now (negative: expired); None: never held
    changed_at: datetime | None


@dataclass(frozen=True)
class Replica:
    id: str
    host: str
    pid: int
    started_at: datetime
    heartbeat_age: float  # seconds since its last heartbeat, by the server's clock


class LeaseBook:
    """One replica's view of the leases, through a connection of its own."""

    def __init__(self, url: str, replica_id: str | None = None, *, ttl: float = DEFAULT_TTL,
                 statement_timeout: float = 2.0) -> None:
        import psycopg

        self._psycopg = psycopg
        self.url, self.where = url, redact_url(url)
        self.id = replica_id or new_replica_id()
        self.ttl = ttl
        self._timeout_ms = max(100, int(statement_timeout * 1000))
        self._conn: Any = None
        self._lock = threading.Lock()

    # --- the connection ---------------------------------------------------------------------------------------

    def _run(self, what: str, fn: Any) -> Any:
        psycopg = self._psycopg
        with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = psycopg.connect(
                        self.url, autocommit=True, connect_timeout=2, application_name=f"presence-sync {self.id}",
                        keepalives=1, keepalives_idle=5, keepalives_interval=2, keepalives_count=2,
                        options=f"-c statement_timeout={self._timeout_ms}")
                return fn(self._conn)
            except psycopg.Error as exc:
                if self._conn is not None:
                    self._conn.close()
                self._conn = None
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise StoreError(f"leases at {self.where}: {what} failed: {first}") from None

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # --- replicas ---------------------------------------------------------------------------------------------

    def heartbeat(self) -> None:
        """Register this replica (the others are told at once), or say it is alive."""
        def go(c: Any) -> None:
            new = c.execute("INSERT INTO replicas (id, host, pid, started_at, heartbeat_at) VALUES (%s, %s, %s, now(),"
                            " now()) ON CONFLICT (id) DO UPDATE SET heartbeat_at = now() RETURNING (xmax = 0)",
                            (self.id, socket.gethostname(), os.getpid())).fetchone()
            if new is not None and new[0]:
                self._notify(c)
        self._run("a heartbeat", go)

    def _notify(self, c: Any) -> None:
        c.execute("SELECT pg_notify(%s, %s)", (CHANNEL, self.id))

    def live_replicas(self, window: float | None = None) -> list[str]:
        """The replicas whose last heartbeat is younger than ``window`` seconds (default: the TTL), by id."""
        return self._run("reading the replicas", lambda c: [r[0] for r in c.execute(
            "SELECT id FROM replicas WHERE heartbeat_at > now() - make_interval(secs => %s) ORDER BY id",
            (self.ttl if window is None else window,)).fetchall()])

    def replicas(self) -> list[Replica]:
        return self._run("reading the replicas", lambda c: [Replica(r[0], r[1], int(r[2]), r[3], float(r[4]))
                                                            for r in c.execute(
            "SELECT id, host, pid, started_at, EXTRACT(EPOCH FROM now() - heartbeat_at) FROM replicas ORDER BY id"
        ).fetchall()])

    def leave(self) -> None:
        """This replica stops (after releasing its leases): its row goes, so the others' shares grow at once."""
        def go(c: Any) -> None:
            c.execute("DELETE FROM replicas WHERE id = %s", (self.id,))
            self._notify(c)
        self._run("leaving", go)

    def forget_dead(self, older_than: float) -> int:
        """Drop replica rows without a heartbeat for ``older_than`` seconds (killed replicas); how many."""
        return int(self._run("forgetting dead replicas", lambda c: c.execute(
            "DELETE FROM replicas WHERE heartbeat_at < now() - make_interval(secs => %s)", (older_than,)).rowcount))

    # --- leases -----------------------------------------------------------------------------------------------

    def ensure(self, accounts: Iterable[str]) -> None:
        """A lease row for every configured account (free until someone takes it)."""
        rows = [(a,) for a in accounts]

        def go(c: Any) -> None:
            with c.cursor() as cur:
                cur.executemany("INSERT INTO leases (account_id) VALUES (%s) ON CONFLICT (account_id) DO NOTHING", rows)
        if rows:
            self._run("creating leases", go)

    def leases(self, accounts: Iterable[str] | None = None) -> list[Lease]:
        wanted = list(accounts) if accounts is not None else None

        def go(c: Any) -> list[Lease]:
            sql = ("SELECT account_id, holder, token, EXTRACT(EPOCH FROM expires_at - now()), changed_at FROM leases"
                   + (" WHERE account_id = ANY(%s)" if wanted is not None else "") + " ORDER BY account_id")
            return [Lease(r[0], r[1], int(r[2]), float(r[3]) if r[3] is not None else None, r[4])
                    for r in c.execute(sql, (wanted,) if wanted is not None else ()).fetchall()]
        return list(self._run("reading the leases", go))

    def acquire(self, account: str) -> int | None:
        """Take ``account`` if its lease is free, expired or already this replica's: the new fencing token (one
        more than any before), or None when another replica holds it."""
        def go(c: Any) -> int | None:
            with c.transaction():
                row = c.execute("SELECT holder, expires_at > now() FROM leases WHERE account_id = %s FOR UPDATE",
                                (account,)).fetchone()
                if row is None or (row[0] not in (None, self.id) and row[1]):  # held by another, not expired
                    return None
                got = c.execute("UPDATE leases SET holder = %s, token = token + 1, changed_at = now(),"
                                " expires_at = now() + make_interval(secs => %s) WHERE account_id = %s"
                                " RETURNING token", (self.id, self.ttl, account)).fetchone()
                return int(got[0])
        result = self._run(f"taking account {account}", go)
        return None if result is None else int(result)

    def renew(self, account: str, token: int) -> bool:
        """Extend the lease by a TTL; False when it is no longer this replica's (expired, or taken over)."""
        return bool(self._run(f"renewing account {account}", lambda c: c.execute(
            "UPDATE leases SET expires_at = now() + make_interval(secs => %s) WHERE account_id = %s AND holder = %s"
            " AND token = %s AND expires_at > now() RETURNING token", (self.ttl, account, self.id, token)
        ).fetchone() is not None))

    def release(self, account: str, token: int) -> bool:
        """Give ``account`` up (its writes are done): free at once for another replica, which is told (NOTIFY).
        False if not held."""
        def go(c: Any) -> bool:
            done = c.execute("UPDATE leases SET holder = NULL, expires_at = NULL, changed_at = now() WHERE"
                             " account_id = %s AND holder = %s AND token = %s RETURNING token",
                             (account, self.id, token)).fetchone() is not None
            if done:
                self._notify(c)
            return done
        return bool(self._run(f"releasing account {account}", go))


class LeaseListener:
    """``LISTEN presence_sync_leases`` on a connection of its own, in a thread: ``on_change()`` whenever another
    replica released a lease, joined or left, so the coordinator's next round starts at once instead of at the
    next renewal. Only a shortcut: the rounds alone are correct, so a lost connection is opened again quietly."""

    def __init__(self, url: str, replica_id: str, on_change: Callable[[], None]) -> None:
        self.url, self.id, self.on_change = url, replica_id, on_change
        self._stop = threading.Event()
        self._said = False  # a failure to listen was logged
        self._thread = threading.Thread(target=self._run, name="lease-listener", daemon=True)

    def start(self) -> LeaseListener:
        self._thread.start()
        return self

    def _run(self) -> None:
        import psycopg

        while not self._stop.is_set():
            try:
                with psycopg.connect(self.url, autocommit=True, connect_timeout=2,
                                     application_name=f"presence-sync {self.id} listener") as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=0.5):
                            if note.payload != self.id:
                                self.on_change()
            except Exception as exc:  # noqa: BLE001 - only a shortcut: any failure means "connect again in a second"
                if not self._said:  # once: the renewal rounds still hand accounts over, only more slowly
                    self._said = True
                    log.warning("replica %s: cannot LISTEN for lease changes (%s); hand-overs wait for the next "
                                "renewal round (through a transaction-pooling proxy, LISTEN needs a session "
                                "connection)", self.id, (str(exc).strip().splitlines() or [type(exc).__name__])[0].replace(
                                    self.url, redact_url(self.url)))
                self._stop.wait(1.0)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=3)
