"""The SQLite backend of the store (its connection and versioned schema) and the timestamp helpers every table
module shares.

One connection per process, WAL journal, synchronous=NORMAL: a committed cycle survives a process crash and
costs one fsync per checkpoint, not per transaction. The schema version lives in `PRAGMA user_version`;
`MIGRATIONS[n]` takes a database from version n to n+1 and runs in its own transaction, so a crash
mid-migration leaves the previous version intact and the next open simply retries.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sync.errors import StoreError
from sync.store.heal import is_damage, quick_check, salvage, set_aside

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SqliteBackend", "StoreError", "connect", "dt", "migrate", "ts"]

MIGRATIONS: tuple[str, ...] = (
    # 0 -> 1: the whole first schema.
    """
    CREATE TABLE users (
        account_id TEXT NOT NULL, id TEXT NOT NULL, upn TEXT NOT NULL, display_name TEXT NOT NULL,
        mail TEXT, proxy_addresses TEXT NOT NULL, im_addresses TEXT NOT NULL,
        account_enabled INTEGER NOT NULL, user_type TEXT NOT NULL,
        PRIMARY KEY (account_id, id)) WITHOUT ROWID;
    CREATE INDEX users_upn ON users (account_id, upn);
    CREATE TABLE directory_state (
        account_id TEXT PRIMARY KEY, delta_link TEXT, synced_at TEXT, version INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE current (
        account_id TEXT NOT NULL, user_id TEXT NOT NULL, upn TEXT NOT NULL,
        availability TEXT NOT NULL, activity TEXT NOT NULL, status_message TEXT NOT NULL,
        out_of_office INTEGER NOT NULL, sequence_number TEXT NOT NULL, observed_at TEXT NOT NULL,
        PRIMARY KEY (account_id, user_id)) WITHOUT ROWID;
    CREATE TABLE transitions (
        account_id TEXT NOT NULL, upn TEXT NOT NULL, user_id TEXT NOT NULL,
        from_availability TEXT NOT NULL, from_activity TEXT NOT NULL,
        to_availability TEXT NOT NULL, to_activity TEXT NOT NULL, changed_at TEXT NOT NULL);
    CREATE INDEX transitions_time ON transitions (changed_at);
    CREATE INDEX transitions_account_time ON transitions (account_id, changed_at);
    CREATE INDEX transitions_user_time ON transitions (account_id, user_id, changed_at);
    CREATE TABLE cycles (
        account_id TEXT NOT NULL, started_at TEXT NOT NULL, agents INTEGER NOT NULL, valid INTEGER NOT NULL,
        resolved INTEGER NOT NULL, presences INTEGER NOT NULL, changes INTEGER NOT NULL,
        requests INTEGER NOT NULL, throttled INTEGER NOT NULL, stale INTEGER NOT NULL,
        written_back INTEGER NOT NULL, duration_s REAL NOT NULL, error TEXT, needs_human INTEGER NOT NULL);
    CREATE INDEX cycles_time ON cycles (started_at);
    CREATE INDEX cycles_account_time ON cycles (account_id, started_at);
    CREATE TABLE validation (
        account_id TEXT NOT NULL, item_id INTEGER NOT NULL, raw_upn TEXT, normalized_upn TEXT NOT NULL,
        status TEXT NOT NULL, codes TEXT NOT NULL, severity TEXT NOT NULL, suggestion TEXT NOT NULL,
        user_id TEXT, updated_at TEXT NOT NULL,
        PRIMARY KEY (account_id, item_id)) WITHOUT ROWID;
    CREATE TABLE writeback (
        account_id TEXT NOT NULL, item_id INTEGER NOT NULL, fields TEXT NOT NULL, written_at TEXT NOT NULL,
        PRIMARY KEY (account_id, item_id)) WITHOUT ROWID;
    """,
    # 1 -> 2: since when each item's desired values have differed from what was written (the Agent-list lag).
    """
    CREATE TABLE writeback_pending (
        account_id TEXT NOT NULL, item_id INTEGER NOT NULL, since TEXT NOT NULL,
        PRIMARY KEY (account_id, item_id)) WITHOUT ROWID;
    """,
    # 2 -> 3: a verdict's tie or per-address candidates, and what exactly is wrong (existing rows: empty).
    """
    ALTER TABLE validation ADD COLUMN candidates TEXT NOT NULL DEFAULT '';
    ALTER TABLE validation ADD COLUMN detail TEXT NOT NULL DEFAULT '';
    """,
    # 3 -> 4: the finding counts of every validation that changed the verdicts (the report's findings over time);
    # codes is a JSON object {code: rows}.
    """
    CREATE TABLE validation_runs (
        account_id TEXT NOT NULL, at TEXT NOT NULL, items INTEGER NOT NULL, ok INTEGER NOT NULL,
        fixed INTEGER NOT NULL, invalid INTEGER NOT NULL, codes TEXT NOT NULL);
    CREATE INDEX validation_runs_account_time ON validation_runs (account_id, at);
    """,
    # 4 -> 5: request shapes a tenant refused (graph/shapes.py), so a restart does not probe them again that day.
    """
    CREATE TABLE refused_shapes (
        account_id TEXT NOT NULL, ladder TEXT NOT NULL, shape TEXT NOT NULL, refused_at TEXT NOT NULL,
        reason TEXT NOT NULL,
        PRIMARY KEY (account_id, ladder, shape)) WITHOUT ROWID;
    """,
    # 5 -> 6: replicas and their leases on accounts (used by the PostgreSQL backend; kept here so both backends
    # carry the same schema versions).
    """
    CREATE TABLE replicas (
        id TEXT PRIMARY KEY, host TEXT NOT NULL, pid INTEGER NOT NULL, started_at TEXT NOT NULL,
        heartbeat_at TEXT NOT NULL);
    CREATE TABLE leases (
        account_id TEXT PRIMARY KEY, holder TEXT, token INTEGER NOT NULL DEFAULT 0, expires_at TEXT,
        changed_at TEXT);
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)

log = logging.getLogger(__name__)


def ts(value: datetime) -> str:
    """A sortable, fixed-width UTC text timestamp (microseconds); naive datetimes are taken as UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dt(value: str) -> datetime:
    """The inverse of `ts`: an aware UTC datetime."""
    return datetime.fromisoformat(value)


def connect(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open (creating it 0600 if needed) and migrate the store at `path`; a damaged one is set aside (see heal)."""
    p = Path(path)
    existed = p.exists()
    try:
        return _open(p, check=existed)
    except sqlite3.DatabaseError as exc:
        if not is_damage(exc) and not isinstance(exc, _Damaged):
            raise StoreError(f"cannot prepare the store {p}: {exc}") from exc
        why = str(exc)
    try:
        aside = set_aside(p)
        conn = _open(p, check=False)
        kept, lost = salvage(aside, conn)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"the store {p} is damaged ({why}) and could not be replaced: {exc}",
                         hint=f"Move {p} out of the state directory and start again.") from exc
    history = (f"{kept} history row(s) kept" if not lost else
               f"history table(s) {', '.join(lost)} could not be read ({kept} row(s) kept)")
    log.warning("the store %s was damaged (%s): it was moved to %s and a new store started; %s; the directory "
                "and the presence snapshot are read again from Microsoft 365", p.name, why, aside.name, history)
    return conn


class _Damaged(sqlite3.DatabaseError):
    """SQLite's quick check found damage."""


def _open(p: Path, check: bool) -> sqlite3.Connection:
    try:
        p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot open the store {p}: {exc}") from exc
    with _migration_lock(p):  # two processes starting on a new store: one creates and migrates, the other waits
        return _open_locked(p, check)


def _open_locked(p: Path, check: bool) -> sqlite3.Connection:
    try:
        p.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Create the file ourselves so it is never world-readable, even for an instant; SQLite gives the
        # -wal and -shm files the database file's permissions.
        fd = os.open(p, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if os.fstat(fd).st_mode & 0o077:
                os.fchmod(fd, 0o600)
        finally:
            os.close(fd)
        conn = sqlite3.connect(p, isolation_level=None, check_same_thread=False)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the store {p}: {exc}") from exc
    try:
        conn.execute("PRAGMA busy_timeout = 5000")
        if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
            raise StoreError(f"the store {p} cannot use WAL journaling (is it on a network file system?)")
        conn.execute("PRAGMA synchronous = NORMAL")
        if check and (problem := quick_check(conn)):
            raise _Damaged(problem)
        migrate(conn, MIGRATIONS)
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def _migration_lock(p: Path) -> Iterator[None]:
    """An exclusive flock on a file of its own (closing a descriptor of the database file itself would drop
    SQLite's POSIX locks), held while the schema is checked and brought forward."""
    try:
        fd = os.open(p.with_name(p.name + ".migrate-lock"), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"cannot open the store {p}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def migrate(conn: sqlite3.Connection, migrations: Sequence[str]) -> int:
    """Bring the schema forward to `len(migrations)`; idempotent. Returns the version reached."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(migrations):
        raise StoreError(
            f"the store has schema version {version}, newer than this program knows ({len(migrations)}); "
            "upgrade presence-sync or point --state-dir elsewhere"
        )
    for target in range(version + 1, len(migrations) + 1):
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{migrations[target - 1]}\nPRAGMA user_version = {target};\nCOMMIT;"
            )
        except sqlite3.Error:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    return len(migrations)


class SqliteBackend:
    """The store in one SQLite file: one connection per process, its use made serial by a lock (the loops write
    from worker threads; writers keep their transactions short, so nobody waits long)."""

    dialect = "sqlite"
    seq = "rowid"  # the column that orders rows written in the same microsecond

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.where = str(self.path)
        self.conn = connect(self.path)
        self._lock = threading.RLock()

    @contextmanager
    def tx(self, what: str, account: str | None = None) -> Iterator[sqlite3.Connection]:
        """One write transaction; any SQLite failure rolls back and becomes a StoreError naming `what`. (One
        process owns a SQLite store, under the state directory's lock: no lease, so ``account`` is not checked.)"""
        with self._lock:
            conn = self.conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"store: {what} failed: {exc}") from exc

    def read(self, sql: str, params: Sequence[object] = ()) -> list[tuple]:  # type: ignore[type-arg]
        try:
            with self._lock:
                return self.conn.execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"store: query failed: {exc}") from exc

    def iter(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple]:  # type: ignore[type-arg]
        """Stream rows (an export may cover millions) instead of fetching them all."""
        try:
            cur = self.conn.execute(sql, params)
            while batch := cur.fetchmany(2000):
                yield from batch
        except sqlite3.Error as exc:
            raise StoreError(f"store: query failed: {exc}") from exc

    def schema_version(self) -> int:
        return int(self.read("PRAGMA user_version")[0][0])

    def fence(self, account: str, replica: str, token: int, until: float | None = None) -> None:
        """No leases on a SQLite store: one process owns it."""

    def extend(self, account: str, until: float) -> None:
        """No leases on a SQLite store: one process owns it."""

    def check_lease(self, account: str, what: str) -> None:
        """No leases on a SQLite store: one process owns it."""

    def unfence(self, account: str) -> None:
        """No leases on a SQLite store: one process owns it."""

    def close(self) -> None:
        """Close the connection (the WAL is checkpointed by SQLite on the last close), after any write in flight."""
        with self._lock:
            self.conn.close()
