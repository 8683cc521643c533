"""One store, two engines: what the table modules ask of a backend, and how a location picks one.

    location                          backend
    a path (state dir's .sqlite)      SqliteBackend (_db.py): the embedded default, one process
    postgresql://... / postgres://    PostgresBackend (postgres.py): several replicas share it

The table modules write portable SQL with ``?`` placeholders (``ON CONFLICT ... DO UPDATE`` upserts, no engine's
own functions); a backend runs it as its engine needs. Where the engines differ (the column that orders rows
inserted at the same instant, the latest row per group) the table module asks ``dialect`` / ``seq``. Both
backends carry the same schema versions (``SCHEMA_VERSION``) and raise every failure as a StoreError.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

__all__ = ["Backend", "TableBase", "Writer", "is_url", "open_backend", "redact_url"]


class Writer(Protocol):
    """The statement runner inside one write transaction."""

    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, sql: str, rows: Any, /) -> Any: ...


class Backend(Protocol):
    dialect: str  # "sqlite" | "postgresql"
    seq: str  # the column that orders rows inserted at the same instant
    where: str  # the store's location as it may be shown (no password)

    def tx(self, what: str, account: str | None = None) -> AbstractContextManager[Writer]: ...

    def read(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]: ...

    def iter(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]: ...

    def schema_version(self) -> int: ...

    def fence(self, account: str, replica: str, token: int, until: float | None = None) -> None: ...

    def extend(self, account: str, until: float) -> None: ...

    def check_lease(self, account: str, what: str) -> None: ...

    def unfence(self, account: str) -> None: ...

    def close(self) -> None: ...


class TableBase:
    """What the table mixins share: the backend, one way to run a write transaction and two ways to read."""

    _db: Backend

    def _tx(self, what: str, account: str) -> AbstractContextManager[Writer]:
        """One write transaction for ``account``; any failure rolls back and becomes a StoreError naming `what`.
        Where replicas hold leases (PostgreSQL), the transaction first checks this replica's fencing token for
        the account and raises LeaseLost when another replica took it over."""
        return self._db.tx(what, account)

    def _read(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        return self._db.read(sql, params)

    def _iter(self, sql: str, params: Sequence[object] = ()) -> Iterator[tuple[Any, ...]]:
        return self._db.iter(sql, params)


def is_url(location: str | os.PathLike[str]) -> bool:
    """A PostgreSQL connection URL (``postgresql://`` or ``postgres://``), not a path."""
    return isinstance(location, str) and location.split("://", 1)[0].lower() in ("postgresql", "postgres")


def redact_url(url: str) -> str:
    """The URL with its password (and any ``password=`` parameter) replaced by ``***``: safe for logs."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://***"
    netloc = parts.netloc
    if "@" in netloc:
        cred, host = netloc.rsplit("@", 1)
        user = cred.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in cred else f"{user}@{host}"
    query = "&".join("password=***" if q.lower().startswith("password=") else q for q in parts.query.split("&")
                     if q) if parts.query else ""
    return f"{parts.scheme}://{netloc}{parts.path}" + (f"?{query}" if query else "")


def open_backend(location: str | os.PathLike[str]) -> Backend:
    """A SQLite file at a path, or a PostgreSQL database at a URL (psycopg must be installed)."""
    if is_url(location):
        from .postgres import PostgresBackend

        return PostgresBackend(str(location))
    from ._db import SqliteBackend

    return SqliteBackend(location)
