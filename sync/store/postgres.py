"""The PostgreSQL backend of the store: several replicas share one database (``--store postgresql://...``).

psycopg 3 with a psycopg_pool connection pool (the ``postgres`` extra: ``pip install presence-sync[postgres]``).
The password comes from the URL, from ``PGPASSWORD`` or from a libpq service or pgpass file (libpq reads them
itself); it never appears in a message: the store is shown by ``redact_url``.

The schema has the same versions as SQLite's (``MIGRATIONS`` below, one per ``_db.MIGRATIONS``), kept in
``presence_sync_schema``. Migrations run in one transaction under a transaction-level advisory lock, so replicas
that start together bring the schema forward once, one after the other. Rows inserted in the same microsecond
are ordered by an identity column ``seq`` where SQLite has its ``rowid``.

Pooled connections are checked before use, so after the server restarts the next statement reconnects; a
statement that fails while it is down is a StoreError like any other, and the caller retries it on its own
schedule.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from sync.errors import LeaseLost, StoreError
from sync.store._db import MIGRATIONS as SQLITE_MIGRATIONS
from sync.store.backend import redact_url

__all__ = ["MIGRATIONS", "MIGRATION_LOCK", "PostgresBackend", "pg_sql"]

log = logging.getLogger(__name__)

MIGRATION_LOCK = 0x70726573  # pg_advisory_xact_lock key held while the schema is checked and brought forward

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the whole first schema.
    """
    CREATE TABLE users (
        account_id TEXT NOT NULL, id TEXT NOT NULL, upn TEXT NOT NULL, display_name TEXT NOT NULL,
        mail TEXT, proxy_addresses TEXT NOT NULL, im_addresses TEXT NOT NULL,
        account_enabled INTEGER NOT NULL, user_type TEXT NOT NULL,
        PRIMARY KEY (account_id, id));
    CREATE INDEX users_upn ON users (account_id, upn);
    CREATE TABLE directory_state (
        account_id TEXT PRIMARY KEY, delta_link TEXT, synced_at TEXT, version BIGINT NOT NULL DEFAULT 0);
    CREATE TABLE current (
        account_id TEXT NOT NULL, user_id TEXT NOT NULL, upn TEXT NOT NULL,
        availability TEXT NOT NULL, activity TEXT NOT NULL, status_message TEXT NOT NULL,
        out_of_office INTEGER NOT NULL, sequence_number TEXT NOT NULL, observed_at TEXT NOT NULL,
        PRIMARY KEY (account_id, user_id));
    CREATE TABLE transitions (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_id TEXT NOT NULL, upn TEXT NOT NULL, user_id TEXT NOT NULL,
        from_availability TEXT NOT NULL, from_activity TEXT NOT NULL,
        to_availability TEXT NOT NULL, to_activity TEXT NOT NULL, changed_at TEXT NOT NULL);
    CREATE INDEX transitions_time ON transitions (changed_at);
    CREATE INDEX transitions_account_time ON transitions (account_id, changed_at);
    CREATE INDEX transitions_user_time ON transitions (account_id, user_id, changed_at);
    CREATE TABLE cycles (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_id TEXT NOT NULL, started_at TEXT NOT NULL, agents INTEGER NOT NULL, valid INTEGER NOT NULL,
        resolved INTEGER NOT NULL, presences INTEGER NOT NULL, changes INTEGER NOT NULL,
        requests INTEGER NOT NULL, throttled INTEGER NOT NULL, stale INTEGER NOT NULL,
        written_back INTEGER NOT NULL, duration_s DOUBLE PRECISION NOT NULL, error TEXT,
        needs_human INTEGER NOT NULL);
    CREATE INDEX cycles_time ON cycles (started_at);
    CREATE INDEX cycles_account_time ON cycles (account_id, started_at);
    CREATE TABLE validation (
        account_id TEXT NOT NULL, item_id BIGINT NOT NULL, raw_upn TEXT, normalized_upn TEXT NOT NULL,
        status TEXT NOT NULL, codes TEXT NOT NULL, severity TEXT NOT NULL, suggestion TEXT NOT NULL,
        user_id TEXT, updated_at TEXT NOT NULL,
        PRIMARY KEY (account_id, item_id));
    CREATE TABLE writeback (
        account_id TEXT NOT NULL, item_id BIGINT NOT NULL, fields TEXT NOT NULL, written_at TEXT NOT NULL,
        PRIMARY KEY (account_id, item_id));
    """,
    # 1 -> 2: since when each item's desired values have differed from what was written (the Agent-list lag).
    """
    CREATE TABLE writeback_pending (
        account_id TEXT NOT NULL, item_id BIGINT NOT NULL, since TEXT NOT NULL,
        PRIMARY KEY (account_id, item_id));
    """,
    # 2 -> 3: a verdict's tie or per-address candidates, and what exactly is wrong.
    """
    ALTER TABLE validation ADD COLUMN candidates TEXT NOT NULL DEFAULT '';
    ALTER TABLE validation ADD COLUMN detail TEXT NOT NULL DEFAULT '';
    """,
    # 3 -> 4: the finding counts of every validation that changed the verdicts.
    """
    CREATE TABLE validation_runs (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        account_id TEXT NOT NULL, at TEXT NOT NULL, items INTEGER NOT NULL, ok INTEGER NOT NULL,
        fixed INTEGER NOT NULL, invalid INTEGER NOT NULL, codes TEXT NOT NULL);
    CREATE INDEX validation_runs_account_time ON validation_runs (account_id, at);
    """,
    # 4 -> 5: request shapes a tenant refused (graph/shapes.py).
    """
    CREATE TABLE refused_shapes (
        account_id TEXT NOT NULL, ladder TEXT NOT NULL, shape TEXT NOT NULL, refused_at TEXT NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (account_id, ladder, shape));
    """,
    # 5 -> 6: replicas (heartbeats) and leases on accounts with fencing tokens (sync/replicas/leases.py). The
    # database's clock (now()) is the only clock that decides who holds what.
    """
    CREATE TABLE replicas (
        id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, started_at TIMESTAMPTZ NOT NULL,
        heartbeat_at TIMESTAMPTZ NOT NULL);
    CREATE TABLE leases (
        account_id TEXT PRIMARY KEY, holder TEXT, token BIGINT NOT NULL DEFAULT 0, expires_at TIMESTAMPTZ,
        changed_at TIMESTAMPTZ);
    """,
)
assert len(MIGRATIONS) == len(SQLITE_MIGRATIONS), "both backends carry the same schema versions"


@lru_cache(maxsize=512)
def pg_sql(sql: str) -> str:
    """The table modules' portable SQL for psycopg: ``?`` placeholders become ``%s`` (a literal ``%`` doubles)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]


class _Writer:
    """A psycopg cursor that speaks the table modules' ``?`` SQL."""

    def __init__(self, cur: Any) -> None:
        self._cur = cur

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._cur.execute(pg_sql(sql), tuple(params))

    def executemany(self, sql: str, rows: Any) -> Any:
        rows = list(rows)
        if rows:
            self._cur.executemany(pg_sql(sql), rows)
        return self._cur


class PostgresBackend:
    """The store in a PostgreSQL database, through a small connection pool."""

    dialect = "postgresql"
    seq = "seq"

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 4, timeout: float = 10.0,
                 wait: float = 2.0) -> None:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool
        except ImportError:
            raise StoreError("a postgresql:// store needs psycopg and psycopg_pool",
                             hint="Install them with `pip install 'presence-sync[postgres]'`.") from None
        self._psycopg = psycopg
        self.url, self.where = url, redact_url(url)
        self._lock = threading.RLock()  # the in-memory caches above assume one writer at a time, as with SQLite
        self.fences: dict[str, tuple[str, int]] = {}  # account -> (replica, token) its writes must still hold
        self.deadlines: dict[str, float] = {}  # account -> time.monotonic() its lease may pass to another replica
        # Keepalives let the server notice a dead replica's connection; the client notices a dead server.
        kwargs: dict[str, Any] = {"autocommit": True, "keepalives": 1, "keepalives_idle": 5, "keepalives_interval": 2,
                  "keepalives_count": 3, "connect_timeout": max(1, int(timeout)),
                  "application_name": "presence-sync"}
        try:  # one connection first: its error says what is wrong, where the pool would only time out
            psycopg.connect(url, **kwargs).close()
        except Exception as exc:
            raise StoreError(f"cannot connect to the store {self.where}: {_reason(exc)}",
                             hint="Check the URL, that the server is running and accepts this user, and the "
                                  "password (in the URL, PGPASSWORD or ~/.pgpass).") from None
        # While the server is away the pool warns of every reconnection attempt (one a second or more, each a
        # two-line message); the store's own errors and the lease rounds already say what fails, once.
        logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
        try:
            self._pool = ConnectionPool(url, min_size=min_size, max_size=max_size, kwargs=kwargs, open=False,
                                        check=ConnectionPool.check_connection, timeout=timeout,
                                        name="presence-sync")
            self._pool.open(wait=True, timeout=timeout)
            # A statement waits at most ``wait`` seconds for a connection: while the server is down, a tick fails
            # fast (and says so) instead of holding the store for the pool's whole connect timeout.
            self._pool.timeout = wait
        except Exception as exc:  # PoolTimeout, a bad URL (ProgrammingError), ...
            raise StoreError(f"cannot connect to the store {self.where}: {_reason(exc)}",
                             hint="Check the URL, that the server is running and accepts this user, and the "
                                  "password (in the URL, PGPASSWORD or ~/.pgpass).") from None
        try:
            self._migrate()
        except BaseException:
            self._pool.close()
            raise

    # --- schema ----------------------------------------------------------------------------------------------

    def _migrate(self) -> int:
        psycopg = self._psycopg
        try:
            with self._pool.connection() as conn, conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                conn.execute("CREATE TABLE IF NOT EXISTS presence_sync_schema (version INTEGER NOT NULL)")
                row = conn.execute("SELECT version FROM presence_sync_schema").fetchone()
                if row is None:
                    conn.execute("INSERT INTO presence_sync_schema (version) VALUES (0)")
                version = int(row[0]) if row else 0
                if version > len(MIGRATIONS):
                    raise StoreError(
                        f"the store {self.where} has schema version {version}, newer than this program knows "
                        f"({len(MIGRATIONS)})", hint="Upgrade presence-sync on this replica.")
                for target in range(version + 1, len(MIGRATIONS) + 1):
                    for statement in _statements(MIGRATIONS[target - 1]):
                        conn.execute(statement)
                    conn.execute("UPDATE presence_sync_schema SET version = %s", (target,))
                    log.info("store %s: schema version %d", self.where, target)
        except psycopg.Error as exc:
            raise StoreError(f"cannot prepare the store {self.where}: {_reason(exc)}",
                             hint="The user needs CREATE on the database's schema (see the README).") from None
        return len(MIGRATIONS)

    def schema_version(self) -> int:
        return int(self.read("SELECT version FROM presence_sync_schema")[0][0])

    # --- statements ------------------------------------------------------------------------------------------

    def fence(self, account: str, replica: str, token: int, until: float | None = None) -> None:
        """From now on every write for ``account`` checks, in its own transaction, that ``replica`` still holds
        the account's lease with ``token`` (the fencing token); otherwise it is refused with LeaseLost. ``until``
        (``time.monotonic()``) is when the lease may have passed to another replica by this replica's own clock:
        from then on writes are refused here, before the database is asked (``extend`` moves it)."""
        self.fences[account] = (replica, token)
        self.deadlines[account] = math.inf if until is None else until

    def extend(self, account: str, until: float) -> None:
        """The lease was renewed: it cannot pass to another replica before ``until`` (``time.monotonic()``)."""
        if account in self.deadlines:
            self.deadlines[account] = until

    def unfence(self, account: str) -> None:
        """The lease was released or lost: writes for ``account`` are refused until the next ``fence``."""
        self.fences[account] = ("", -1)
        self.deadlines[account] = -math.inf

    def check_lease(self, account: str, what: str) -> None:
        """LeaseLost when this replica may no longer hold ``account`` by its own clock (a pause, a renewal that
        is late): the database is not asked. Nothing for an account that was never fenced."""
        until = self.deadlines.get(account)
        if until is not None and time.monotonic() >= until:
            token = self.fences.get(account, ("", -1))[1]
            raise LeaseLost(f"store: {what} refused: the lease of account {account} (fencing token {token}) "
                            "may have passed to another replica")

    @contextmanager
    def tx(self, what: str, account: str | None = None) -> Iterator[_Writer]:
        psycopg = self._psycopg
        fence = self.fences.get(account) if account is not None else None
        if fence is not None and account is not None:
            self.check_lease(account, what)
        with self._lock:
            try:
                with self._pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
                    if fence is not None:
                        # FOR SHARE: a takeover (UPDATE of the lease row) waits for this write to commit, and a
                        # write after the takeover sees the new token and is refused.
                        cur.execute("SELECT 1 FROM leases WHERE account_id = %s AND holder = %s AND token = %s"
                                    " AND expires_at > now() FOR SHARE", (account, fence[0], fence[1]))
                        if cur.fetchone() is None:
                            raise LeaseLost(f"store: {what} refused: this replica no longer holds account "
                                            f"{account} (fencing token {fence[1]})")
                    yield _Writer(cur)
            except psycopg.Error as exc:
                raise StoreError(f"store: {what} failed: {_reason(exc)}") from None
            except Exception as exc:
                if type(exc).__name__ == "PoolTimeout":
                    raise StoreError(f"store: {what} failed: {_reason(exc)}") from None
                raise

    def read(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        psycopg = self._psycopg
        try:
            with self._lock, self._pool.connection() as conn:
                return list(conn.execute(pg_sql(sql), tuple(params)).fetchall())
        except psycopg.Error as exc:
            raise StoreError(f"store: query failed: {_reason(exc)}") from None
        except Exception as exc:
            if type(exc).__name__ == "PoolTimeout":
                raise StoreError(f"store: query failed: {_reason(exc)}") from None
            raise

    def iter(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
        """Stream rows through a server-side cursor, 2,000 at a time."""
        psycopg = self._psycopg
        try:
            with self._pool.connection() as conn, conn.transaction(), conn.cursor(name="presence_sync_iter") as cur:
                cur.itersize = 2000
                cur.execute(pg_sql(sql), tuple(params))
                yield from cur
        except psycopg.Error as exc:
            raise StoreError(f"store: query failed: {_reason(exc)}") from None

    def close(self) -> None:
        with self._lock:
            self._pool.close()


def _reason(exc: BaseException) -> str:
    """One line of what went wrong (psycopg's first line; never the connection string)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
