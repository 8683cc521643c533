"""Reading the store into pandas: validation verdicts and their history, transitions, cycles, the snapshot.

Queries go through a read-only connection of their own (``Reader``): SQLite with ``PRAGMA query_only`` (the
job may be running; WAL lets it write meanwhile), or a read-only PostgreSQL session on the store several
replicas share (``postgresql://...``), where every replica's accounts are. Filters: accounts (exact ids), agents (UPNs, case-insensitive) and a half-open time range
[since, until). Timestamps come back as UTC datetimes.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import StoreError, UsageError
from ..store import Store, is_url, redact_url
from ..store._db import ts
from .timeline import intervals

__all__ = ["Reader", "Scope", "connect", "last_cycle_ends", "read_baseline", "read_current", "read_cycles", "read_runs", "read_transitions",
           "read_validation", "state_spans", "store_path"]

_TIME = "datetime64[ns, UTC]"


@dataclass(frozen=True)
class Scope:
    """What a report or an export covers; None means "no filter"."""

    accounts: tuple[str, ...] | None = None
    agents: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def end(self) -> datetime:
        """The range's end: --until, else now."""
        return self.until or datetime.now(UTC)


def store_path(state_dir: Path) -> Path:
    """The state directory's store; a usage error (exit 2) when there is none yet."""
    db = state_dir / "presence-sync.sqlite"
    if not db.is_file():
        raise UsageError(f"no store at {db}; run `presence-sync run` first or pass the right --state-dir")
    return db


class Reader:
    """A read-only connection to the store: a SQLite file or a PostgreSQL database (a ``postgresql://`` URL),
    migrated to this program's schema first. ``seq`` names the insertion-order column of the dialect."""

    def __init__(self, location: str | os.PathLike[str]) -> None:
        Store(location).close()  # brings an older store's schema forward (a no-op when it is current)
        self.dialect = "postgresql" if is_url(location) else "sqlite"
        self.seq = "seq" if self.dialect == "postgresql" else "rowid"
        self._conn: Any
        if self.dialect == "postgresql":
            import psycopg

            url = str(location)
            try:
                self._conn = psycopg.connect(url, autocommit=True, connect_timeout=10,
                                             options="-c default_transaction_read_only=on")
            except psycopg.Error as exc:
                from ..store.postgres import _reason

                raise StoreError(f"cannot read the store {redact_url(url)}: "
                                 f"{_reason(exc).replace(url, redact_url(url))}") from None
            return
        try:
            self._conn = sqlite3.connect(location, check_same_thread=False)
            self._conn.execute("PRAGMA query_only = ON")
            self._conn.execute("PRAGMA busy_timeout = 5000")
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the store {location}: {exc}") from exc

    def frame(self, sql: str, params: Sequence[object]) -> pd.DataFrame:
        """The rows of a query in the store modules' portable SQL (``?`` placeholders)."""
        if self.dialect == "sqlite":
            return pd.read_sql_query(sql, self._conn, params=list(params))
        from ..store.postgres import pg_sql

        with self._conn.cursor() as cur:
            cur.execute(pg_sql(sql), tuple(params))
            columns = [d.name for d in cur.description]
            return pd.DataFrame.from_records(cur.fetchall(), columns=columns)

    def close(self) -> None:
        self._conn.close()


def connect(location: str | os.PathLike[str]) -> Reader:
    """A read-only connection to the store at ``location`` (a SQLite path or a PostgreSQL URL)."""
    return Reader(location)


def _where(scope: Scope, time_col: str | None, agents: bool = True,
           before: datetime | None = None) -> tuple[str, list[object]]:
    clauses: list[str] = []
    params: list[object] = []
    if scope.accounts is not None:
        clauses.append(f"account_id IN ({','.join('?' * len(scope.accounts))})" if scope.accounts else "1 = 0")
        params.extend(scope.accounts)
    if agents and scope.agents is not None:
        clauses.append(f"lower(upn) IN ({','.join('?' * len(scope.agents))})" if scope.agents else "1 = 0")
        params.extend(a.strip().lower() for a in scope.agents)
    if time_col is not None and before is not None:
        clauses.append(f"{time_col} < ?")
        params.append(ts(before))
    elif time_col is not None:
        if scope.since is not None:
            clauses.append(f"{time_col} >= ?")
            params.append(ts(scope.since))
        if scope.until is not None:
            clauses.append(f"{time_col} < ?")
            params.append(ts(scope.until))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _query(conn: Reader, sql: str, params: Sequence[object], times: Sequence[str] = ()) -> pd.DataFrame:
    try:
        df = conn.frame(sql, params)
    except (sqlite3.Error, pd.errors.DatabaseError) as exc:
        raise StoreError(f"store: query failed: {exc}") from exc
    except Exception as exc:
        if type(exc).__module__.startswith("psycopg"):
            from ..store.postgres import _reason

            raise StoreError(f"store: query failed: {_reason(exc)}") from None
        raise
    for col in times:
        df[col] = pd.to_datetime(df[col], utc=True, format="ISO8601") if len(df) else df[col].astype(_TIME)
    return df


def read_validation(conn: Reader, scope: Scope) -> pd.DataFrame:
    """The latest verdict of every Agent-list item (the store's copy of validation.csv), by account and item."""
    where, params = _where(scope, None, agents=False)
    sql = ("SELECT account_id, item_id, raw_upn, normalized_upn, status, codes, severity, suggestion, updated_at"
           f" FROM validation{where} ORDER BY account_id, item_id")
    df = _query(conn, sql, params, ("updated_at",))
    df["raw_upn"] = df["raw_upn"].fillna("")
    return df


def read_runs(conn: Reader, scope: Scope) -> pd.DataFrame:
    """Finding counts of every validation that changed the verdicts, in the range (validation_runs)."""
    where, params = _where(scope, "at", agents=False)
    sql = f"SELECT account_id, at, items, ok, fixed, invalid, codes FROM validation_runs{where} ORDER BY at, {conn.seq}"
    return _query(conn, sql, params, ("at",))


_TRANSITION = "account_id, upn, user_id, from_availability, from_activity, to_availability, to_activity, changed_at"


def read_transitions(conn: Reader, scope: Scope, baseline: bool = False) -> pd.DataFrame:
    """Transitions in the range, oldest first; with ``baseline`` also each agent's last transition before it
    (the state the agent was in when the range starts)."""
    where, params = _where(scope, "changed_at")
    sql = f"SELECT {_TRANSITION} FROM transitions{where} ORDER BY changed_at, {conn.seq}"
    df = _query(conn, sql, params, ("changed_at",))
    if baseline and scope.since is not None:
        before = read_baseline(conn, scope, scope.since)
        if len(before):
            df = pd.concat([before, df], ignore_index=True) if len(df) else before
    return df


def read_baseline(conn: Reader, scope: Scope, at: datetime) -> pd.DataFrame:
    """Each agent's last transition before ``at``: the state it was in at that instant."""
    where, params = _where(scope, "changed_at", before=at)
    if conn.dialect == "postgresql":
        sql = (f"SELECT {_TRANSITION} FROM (SELECT DISTINCT ON (account_id, user_id) {_TRANSITION} FROM transitions"
               f"{where} ORDER BY account_id, user_id, changed_at DESC, seq DESC) latest ORDER BY account_id, upn")
    else:  # SQLite takes the bare columns from the row holding MAX(); the (account, user, time) index serves it.
        sql = (f"SELECT {_TRANSITION.replace('changed_at', 'MAX(changed_at) AS changed_at')} FROM transitions"
               f"{where} GROUP BY account_id, user_id ORDER BY account_id, upn")
    return _query(conn, sql, params, ("changed_at",))


def read_cycles(conn: Reader, scope: Scope) -> pd.DataFrame:
    where, params = _where(scope, "started_at", agents=False)
    sql = ("SELECT account_id, started_at, agents, valid, resolved, presences, changes, requests, throttled, stale,"
           f" written_back, duration_s, error, needs_human FROM cycles{where} ORDER BY started_at, {conn.seq}")
    return _query(conn, sql, params, ("started_at",))


def read_current(conn: Reader, scope: Scope) -> pd.DataFrame:
    """The presence snapshot: each agent's current state and since when (observed_at)."""
    where, params = _where(scope, None)
    sql = f"SELECT account_id, upn, user_id, availability, activity, observed_at FROM current{where}"
    return _query(conn, sql, params, ("observed_at",))


def last_cycle_ends(conn: Reader, scope: Scope) -> dict[str, datetime]:
    """Per account, when its last recorded cycle (of any time) ended: nothing is known after it."""
    where, params = _where(Scope(accounts=scope.accounts), None, agents=False)
    if conn.dialect == "postgresql":
        sql = (f"SELECT DISTINCT ON (account_id) account_id, started_at, duration_s FROM cycles{where}"
               " ORDER BY account_id, started_at DESC, seq DESC")
    else:  # the bare column comes from the row holding MAX()
        sql = f"SELECT account_id, MAX(started_at) AS started_at, duration_s FROM cycles{where} GROUP BY account_id"
    df = _query(conn, sql, params, ("started_at",))
    ends = df["started_at"] + pd.to_timedelta(df["duration_s"], unit="s")
    return {str(a): e for a, e in zip(df["account_id"], ends, strict=True)}


def state_spans(conn: Reader, scope: Scope, transitions: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every stretch of one availability in the range, per agent (see timeline.intervals); ``transitions`` when
    the caller already read them with their baseline."""
    if transitions is None:
        transitions = read_transitions(conn, scope, baseline=True)
    return intervals(transitions, scope.since, scope.end, last_cycle_ends(conn, scope))
