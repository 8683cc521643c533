"""What only the PostgreSQL backend has: replicas migrating one new database at once, a newer schema refused, the
server going away and coming back, and a URL that never shows its password."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from sync.bench.postgres import TemporaryPostgres
from sync.models import DirectoryUser
from sync.store import SCHEMA_VERSION, Store, StoreError, redact_url
from sync.store._db import MIGRATIONS as SQLITE_MIGRATIONS
from sync.store.postgres import MIGRATIONS, pg_sql

from .conftest import query


def test_both_backends_carry_the_same_schema_versions() -> None:
    assert len(MIGRATIONS) == len(SQLITE_MIGRATIONS) == SCHEMA_VERSION


def test_replicas_starting_together_on_a_new_database_migrate_it_once(postgres: TemporaryPostgres) -> None:
    url = postgres.create_database("migrate_together")
    start, versions, errors = threading.Barrier(6), [], []

    def open_one() -> None:
        start.wait()
        try:
            with Store(url) as s:
                versions.append(s.schema_version)
        except Exception as exc:  # collected: the assertion below shows it
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == [] and versions == [SCHEMA_VERSION] * 6
    assert query(url, "SELECT version FROM presence_sync_schema") == [(SCHEMA_VERSION,)]  # one row, not six


def test_a_newer_schema_is_refused_with_what_to_do(postgres: TemporaryPostgres) -> None:
    url = postgres.create_database("newer_schema")
    Store(url).close()
    postgres.psql(f"UPDATE presence_sync_schema SET version = {SCHEMA_VERSION + 1}", "newer_schema")
    with pytest.raises(StoreError, match="newer than this program knows") as info:
        Store(url)
    assert "Upgrade presence-sync" in (info.value.hint or "")


def test_the_store_survives_a_server_restart(postgres: TemporaryPostgres) -> None:
    url = postgres.create_database("restart")
    with Store(url) as s:
        s.set_delta_link("contoso", "https://graph/delta?token=1", datetime(2026, 12, 7, tzinfo=UTC))
        postgres.stop("immediate")  # as a crash: the pool's connections are dead
        try:
            with pytest.raises(StoreError, match="query failed|failed"):
                s.get_delta_link("contoso")
        finally:
            postgres.start()
        # The pool checks a connection before handing it out: the next statement reconnects.
        assert s.get_delta_link("contoso") == "https://graph/delta?token=1"
        s.upsert_users("contoso", [DirectoryUser("id-1", "a@contoso.com", "A", None, (), (), True, "Member")])
        assert [u.id for u in s.load_directory("contoso")] == ["id-1"]


def test_urls_are_shown_without_their_password() -> None:
    assert redact_url("postgresql://sync:s3cret@db.example:5432/presence") == \
        "postgresql://sync:***@db.example:5432/presence"
    assert redact_url("postgres://sync@db/presence?sslmode=verify-full&password=s3cret") == \
        "postgres://sync@db/presence?sslmode=verify-full&password=***"
    assert redact_url("postgresql:///presence?host=/run/postgresql") == "postgresql:///presence?host=/run/postgresql"


def test_an_unreachable_server_is_a_store_error_naming_the_redacted_url(postgres: TemporaryPostgres) -> None:
    url = postgres.url().replace(f":{postgres.port}/", ":1/")
    with pytest.raises(StoreError, match=r"cannot connect to the store postgresql://postgres:\*\*\*@127\.0\.0\.1:1/"
                       ) as info:
        Store(url)
    assert postgres.password not in str(info.value) and "PGPASSWORD" in (info.value.hint or "")


def test_portable_sql_becomes_psycopg_sql() -> None:
    assert pg_sql("SELECT 1 WHERE a = ? AND b LIKE '5%'") == "SELECT 1 WHERE a = %s AND b LIKE '5%%'"
