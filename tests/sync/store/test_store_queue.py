"""The write-back queue in the store: longest-wrong first, pending_since kept across restarts, lags on write."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sync.store import SCHEMA_VERSION, Store
from sync.store._db import MIGRATIONS

T0 = datetime(2026, 11, 27, 6, 30, 0, 123456, tzinfo=UTC)


def vals(availability: str) -> dict[str, str]:
    return {"Availability": availability, "Activity": availability}


def test_queue_is_longest_wrong_first_then_by_item(store: Store) -> None:
    desired = {5: vals("Busy"), 2: vals("Busy")}
    q = store.writeback_queue("contoso", desired, T0)
    assert q == [(2, vals("Busy"), T0), (5, vals("Busy"), T0)]  # same pending_since: by item id
    desired |= {1: vals("Away"), 9: vals("Away")}
    q = store.writeback_queue("contoso", desired, T0 + timedelta(seconds=30))
    assert [(i, s) for i, _, s in q] == [(2, T0), (5, T0), (1, T0 + timedelta(seconds=30)),
                                         (9, T0 + timedelta(seconds=30))]
    # A value that changes again while pending keeps its place: it has been wrong since T0.
    desired[5] = vals("DoNotDisturb")
    q = store.writeback_queue("contoso", desired, T0 + timedelta(seconds=60))
    assert q[1] == (5, vals("DoNotDisturb"), T0)


def test_items_no_longer_pending_are_forgotten(store: Store) -> None:
    store.mark_written("contoso", {1: vals("Available"), 2: vals("Available")}, T0)
    desired = {1: vals("Busy"), 2: vals("Busy"), 3: vals("Busy")}
    assert [i for i, _, _ in store.writeback_queue("contoso", desired, T0)] == [1, 2, 3]
    # 1 went back to what the list already shows, 3 left the roster: neither is pending any more.
    later = T0 + timedelta(minutes=5)
    q = store.writeback_queue("contoso", {1: vals("Available"), 2: vals("Busy")}, later)
    assert q == [(2, vals("Busy"), T0)]
    # When 1 changes again it is pending since then, not since the first time.
    q = store.writeback_queue("contoso", {1: vals("Away"), 2: vals("Busy")}, later)
    assert q == [(2, vals("Busy"), T0), (1, vals("Away"), later)]


def test_mark_written_returns_the_lags_and_clears_pending_since(store: Store) -> None:
    desired = {1: vals("Busy"), 2: vals("Away"), 3: vals("Away")}
    store.writeback_queue("contoso", {1: desired[1]}, T0)
    store.writeback_queue("contoso", desired, T0 + timedelta(seconds=10))
    lags = store.mark_written("contoso", {1: desired[1], 2: desired[2], 7: vals("Busy")},
                              T0 + timedelta(seconds=12.5))
    assert lags == [12.5, 2.5]  # items 1 and 2, by item id; 7 was never seen pending
    assert store.writeback_queue("contoso", desired, T0 + timedelta(seconds=20)) == [
        (3, desired[3], T0 + timedelta(seconds=10))]
    assert store.writeback_pending("contoso", desired) == {3: desired[3]}
    assert store.mark_written("contoso", {}) == []


def test_pending_since_survives_a_restart(db: Path) -> None:
    desired = {4: vals("Busy"), 8: vals("Away")}
    with Store(db) as s:
        s.writeback_queue("contoso", {8: desired[8]}, T0)
        s.writeback_queue("contoso", desired, T0 + timedelta(seconds=3))
        s.writeback_queue("fabrikam", {4: desired[4]}, T0 + timedelta(seconds=9))
    with Store(db) as again:
        q = again.writeback_queue("contoso", desired, T0 + timedelta(hours=1))
        assert q == [(8, desired[8], T0), (4, desired[4], T0 + timedelta(seconds=3))]
        assert again.mark_written("contoso", {8: desired[8]}, T0 + timedelta(seconds=61)) == [61.0]
        assert again.writeback_queue("fabrikam", {4: desired[4]}, T0 + timedelta(hours=2))[0][2] == (
            T0 + timedelta(seconds=9))
    with Store(db) as third:
        assert third.writeback_queue("contoso", desired, T0 + timedelta(hours=2)) == [
            (4, desired[4], T0 + timedelta(seconds=3))]


def test_naive_times_are_taken_as_utc(store: Store) -> None:
    naive = datetime(2026, 11, 27, 6, 30)
    assert store.writeback_queue("contoso", {1: vals("Busy")}, naive)[0][2] == naive.replace(tzinfo=UTC)
    assert store.mark_written("contoso", {1: vals("Busy")}, naive + timedelta(seconds=1)) == [1.0]


def test_a_store_made_by_the_first_schema_is_migrated(db: Path) -> None:
    db.parent.mkdir(parents=True)
    with sqlite3.connect(db) as c:
        c.executescript(MIGRATIONS[0] + "\nPRAGMA user_version = 1;")
        c.execute("INSERT INTO writeback VALUES ('contoso', 1, ?, '2026-11-27T06:00:00.000000Z')",
                  ('{"Activity": "Busy", "Availability": "Busy"}',))
    with Store(db) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert s.writeback_pending("contoso", {1: vals("Busy")}) == {}  # what was written before is kept
        assert s.writeback_queue("contoso", {1: vals("Away")}, T0) == [(1, vals("Away"), T0)]
