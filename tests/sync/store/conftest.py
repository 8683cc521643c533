"""The store tests' fixtures: a fresh store in a test's own state directory, on SQLite and on PostgreSQL.

``store`` and ``location`` run each test twice: on a SQLite file and on a new database of a real PostgreSQL
server (the session's ``postgres`` fixture in tests/sync/conftest.py). ``sqlite_store`` is for what only SQLite
has (its commit counter, its file).
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sync.bench.postgres import TemporaryPostgres  # the type of the session's postgres fixture
from sync.store import Store

_DATABASES = itertools.count(1)


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "presence-sync.sqlite"


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, db: Path) -> Path | str:
    """Where a store lives: a SQLite path, or the URL of a new PostgreSQL database."""
    if request.param == "sqlite":
        return db
    pg: TemporaryPostgres = request.getfixturevalue("postgres")
    return pg.create_database(f"store_{next(_DATABASES)}")


@pytest.fixture()
def store(location: Path | str) -> Iterator[Store]:
    s = Store(location)
    yield s
    s.close()


@pytest.fixture()
def sqlite_store(db: Path) -> Iterator[Store]:
    s = Store(db)
    yield s
    s.close()


def query(location: Path | str, sql: str) -> list[tuple[Any, ...]]:
    """Rows as another connection sees them (what is on disk), whichever engine holds the store."""
    if isinstance(location, Path):
        with sqlite3.connect(location) as c:
            return c.execute(sql).fetchall()
    import psycopg

    with psycopg.connect(location) as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]
