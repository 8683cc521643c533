"""The SQLite store on a real file: schema and restarts, directory cache, presence diff, history, item state."""

from __future__ import annotations

import sqlite3
import stat
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sync.models import CycleResult, DirectoryUser, Presence, ValidationRow
from sync.store import SCHEMA_VERSION, Store, StoreError
from sync.store._db import MIGRATIONS, migrate

from .conftest import query

T0 = datetime(2026, 11, 27, 6, 30, 0, 123456, tzinfo=UTC)


def pres(i: int, availability: str = "Available", activity: str = "Available", *, at: datetime = T0,
         account: str = "contoso", stale: bool = False, message: str = "", ooo: bool = False) -> Presence:
    return Presence(account, i, f"agent{i}@contoso.com", f"id-{i}", f"Agent {i}", availability, activity,
                    message, ooo, at, stale=stale, sequence_number=f"s{i}")


def user(i: int, **kw: object) -> DirectoryUser:
    base = DirectoryUser(f"id-{i}", f"user{i}@contoso.com", f"User {i}", f"u{i}@contoso.com",
                         (f"SMTP:u{i}@contoso.com", f"SIP:user{i}@contoso.com"), (f"user{i}@contoso.com",))
    return replace(base, **kw)  # type: ignore[arg-type]


class Commits:
    """Counts commits made by other connections: a second connection's PRAGMA data_version moves once each."""

    def __init__(self, path: Path) -> None:
        self._c = sqlite3.connect(path, isolation_level=None)
        self._base = self._now()

    def _now(self) -> int:
        return int(self._c.execute("PRAGMA data_version").fetchone()[0])

    def since_start(self) -> int:
        return self._now() - self._base

    def close(self) -> None:
        self._c.close()


@pytest.fixture()
def commits(sqlite_store: Store, db: Path) -> Iterator[Commits]:
    w = Commits(db)
    yield w
    w.close()


# --- schema, restarts, permissions -------------------------------------------------------------------------


def test_schema_is_created_in_wal_mode_and_survives_reopen(db: Path) -> None:
    with Store(db) as s:
        assert s.schema_version == SCHEMA_VERSION
        s.upsert_users("contoso", [user(1), user(2)])
        s.set_delta_link("contoso", "https://graph/delta?token=abc")
        s.apply_presences("contoso", [pres(1), pres(2, "Busy", "InACall")])
    with Store(db) as s:
        assert {u.id for u in s.load_directory("contoso")} == {"id-1", "id-2"}
        assert s.load_directory("contoso")[0] in (user(1), user(2))
        assert s.get_delta_link("contoso") == "https://graph/delta?token=abc"
        assert s.snapshot("contoso")["id-2"] == ("id-2", "Busy", "InACall", "", False)
        # The diff after a restart compares against what was stored: same state, no transition.
        assert s.apply_presences("contoso", [pres(1, at=T0 + timedelta(seconds=5))]) == []
        later = s.apply_presences("contoso", [pres(2, "Away", "Away", at=T0 + timedelta(seconds=5))])
        assert [(c.from_availability, c.to_availability) for c in later] == [("Busy", "Away")]
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_store_file_is_0600_and_tightened(db: Path) -> None:
    with Store(db) as s:
        s.apply_presences("contoso", [pres(1)])
        for f in db.parent.iterdir():  # the database and its -wal / -shm companions
            assert stat.S_IMODE(f.stat().st_mode) == 0o600, f
    db.chmod(0o644)
    Store(db).close()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_reopening_does_not_rerun_migrations(db: Path) -> None:
    Store(db).close()
    Store(db).close()  # CREATE TABLE would fail if the first migration ran again
    with sqlite3.connect(db) as c:
        assert c.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert migrate(c, MIGRATIONS) == SCHEMA_VERSION
        tables = {r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"users", "directory_state", "current", "transitions", "cycles", "validation", "writeback"} <= tables


def test_migrations_run_forward_only_and_roll_back_on_failure(tmp_path: Path) -> None:
    c = sqlite3.connect(tmp_path / "m.sqlite", isolation_level=None)
    one = "CREATE TABLE a (x INTEGER);"
    two = "CREATE TABLE b (y INTEGER); INSERT INTO a VALUES (1);"
    assert migrate(c, [one]) == 1
    assert migrate(c, [one, two]) == 2  # only `two` runs: `one` again would fail
    assert c.execute("SELECT x FROM a").fetchall() == [(1,)]
    broken = "CREATE TABLE c (z INTEGER); INSERT INTO nowhere VALUES (1);"
    with pytest.raises(sqlite3.Error):
        migrate(c, [one, two, broken])
    assert c.execute("PRAGMA user_version").fetchone()[0] == 2
    assert c.execute("SELECT count(*) FROM sqlite_master WHERE name = 'c'").fetchone()[0] == 0
    c.close()


def test_a_newer_schema_is_refused(db: Path) -> None:
    Store(db).close()
    with sqlite3.connect(db) as c:
        c.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this program"):
        Store(db)


def test_an_unusable_path_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot open"):
        Store(tmp_path / "file" / "sub" / "db.sqlite")


# --- directory cache --------------------------------------------------------------------------------------


def test_directory_upsert_delete_and_version(store: Store) -> None:
    assert store.directory_version("contoso") == 0
    assert store.get_delta_link("contoso") is None
    store.upsert_users("contoso", [user(1), user(2), user(3)])
    v1 = store.directory_version("contoso")
    assert v1 > 0
    store.upsert_users("contoso", [user(2, upn="renamed@contoso.com", account_enabled=False)])
    v2 = store.directory_version("contoso")
    assert v2 > v1
    store.delete_users("contoso", ["id-3"])
    assert store.directory_version("contoso") > v2
    users = {u.id: u for u in store.load_directory("contoso")}
    assert set(users) == {"id-1", "id-2"}
    assert users["id-2"].upn == "renamed@contoso.com" and users["id-2"].account_enabled is False
    assert users["id-1"].proxy_addresses == ("SMTP:u1@contoso.com", "SIP:user1@contoso.com")
    before = store.directory_version("contoso")
    store.upsert_users("contoso", [])
    store.delete_users("contoso", [])
    assert store.directory_version("contoso") == before  # nothing happened, nothing to rebuild
    assert store.load_directory("fabrikam") == []


def test_delta_link_and_reset(store: Store) -> None:
    store.upsert_users("contoso", [user(1)])
    store.upsert_users("fabrikam", [user(9)])
    store.set_delta_link("contoso", "link-1", synced_at=T0)
    assert store.get_delta_link("contoso") == "link-1"
    assert store.directory_synced_at("contoso") == T0
    v = store.directory_version("contoso")
    store.reset_directory("contoso")  # the delta token expired (410): start over
    assert store.get_delta_link("contoso") is None
    assert store.load_directory("contoso") == []
    assert store.directory_version("contoso") > v
    assert [u.id for u in store.load_directory("fabrikam")] == ["id-9"]


# --- presence diff ----------------------------------------------------------------------------------------


def test_first_observation_is_a_transition_from_empty(store: Store) -> None:
    changes = store.apply_presences("contoso", [pres(1), pres(2, "Busy", "InACall")])
    assert [(c.user_id, c.from_availability, c.from_activity, c.to_availability, c.to_activity)
            for c in changes] == [("id-1", "", "", "Available", "Available"), ("id-2", "", "", "Busy", "InACall")]
    assert changes[0].changed_at == T0 and changes[0].upn == "agent1@contoso.com"


def test_no_change_means_no_transition_and_no_write(sqlite_store: Store, commits: Commits) -> None:
    store = sqlite_store
    store.apply_presences("contoso", [pres(i) for i in range(50)])
    assert commits.since_start() == 1
    version = store.snapshot_version("contoso")
    later = [pres(i, at=T0 + timedelta(seconds=1)) for i in range(50)]
    assert store.apply_presences("contoso", later) == []
    assert commits.since_start() == 1  # nothing committed
    assert store.snapshot_version("contoso") == version
    assert len(list(store.history())) == 50  # the first observations only


def test_a_change_is_one_transition_with_from_and_to(store: Store) -> None:
    store.apply_presences("contoso", [pres(i) for i in range(5)])
    at = T0 + timedelta(seconds=2)
    cycle = [pres(i, at=at) for i in range(5)]
    cycle[3] = pres(3, "Busy", "InAMeeting", at=at)
    changes = store.apply_presences("contoso", cycle)
    assert len(changes) == 1
    c = changes[0]
    assert (c.account_id, c.upn, c.user_id) == ("contoso", "agent3@contoso.com", "id-3")
    assert (c.from_availability, c.from_activity, c.to_availability, c.to_activity) == (
        "Available", "Available", "Busy", "InAMeeting")
    assert c.changed_at == at
    assert list(store.history(since=at)) == changes
    assert store.apply_presences("contoso", cycle) == []  # applied once only


def test_stale_presences_never_change_anything(store: Store) -> None:
    store.apply_presences("contoso", [pres(1)])
    v = store.snapshot_version("contoso")
    assert store.apply_presences("contoso", [pres(1, "Offline", "OffWork", stale=True)]) == []
    assert store.apply_presences("contoso", [pres(2, "Busy", "Busy", stale=True)]) == []  # unseen, stale
    assert store.snapshot("contoso")["id-1"][1] == "Available"
    assert "id-2" not in store.snapshot("contoso")
    assert store.snapshot_version("contoso") == v
    # The next fresh observation compares against the state before the stale one.
    changes = store.apply_presences("contoso", [pres(1, "Away", "Away")])
    assert [(c.from_availability, c.to_availability) for c in changes] == [("Available", "Away")]


def test_message_or_ooo_change_updates_the_row_without_a_transition(store: Store, location: Path | str) -> None:
    store.apply_presences("contoso", [pres(1)])
    v = store.snapshot_version("contoso")
    assert store.apply_presences("contoso", [pres(1, message="Back at 3", ooo=True)]) == []
    assert store.snapshot_version("contoso") == v + 1  # presence.csv must be rewritten
    assert query(location, "SELECT status_message, out_of_office FROM current") == [("Back at 3", 1)]
    assert query(location, "SELECT count(*) FROM transitions") == [(1,)]


def test_a_user_on_two_items_counts_once(store: Store) -> None:
    twice = [pres(1), replace(pres(1), agent_item_id=99)]
    assert len(store.apply_presences("contoso", twice)) == 1
    moved = [pres(1, "Busy", "Busy"), replace(pres(1, "Busy", "Busy"), agent_item_id=99)]
    assert len(store.apply_presences("contoso", moved)) == 1


def test_accounts_are_diffed_separately(store: Store) -> None:
    store.apply_presences("contoso", [pres(1)])
    assert len(store.apply_presences("fabrikam", [pres(1, account="fabrikam")])) == 1


def test_apply_commits_once_per_cycle(sqlite_store: Store, commits: Commits) -> None:
    store = sqlite_store
    store.apply_presences("contoso", [pres(i) for i in range(100)])
    assert commits.since_start() == 1
    at = T0 + timedelta(seconds=1)
    changes = store.apply_presences("contoso", [pres(i, "Busy", "InACall", at=at) for i in range(100)])
    assert len(changes) == 100
    assert commits.since_start() == 2  # 100 rows + 100 transitions, one commit


def test_a_failing_write_leaves_disk_and_memory_unchanged(store: Store, location: Path | str) -> None:
    store.apply_presences("contoso", [pres(i) for i in range(10)])
    at = T0 + timedelta(seconds=1)
    cycle = [pres(i, "Away", "Away", at=at) for i in range(10)]
    cycle[-1] = replace(cycle[-1], sequence_number=object())  # type: ignore[arg-type]  # no engine binds it
    with pytest.raises(StoreError, match="saving presences"):
        store.apply_presences("contoso", cycle)
    assert query(location, "SELECT count(*) FROM current WHERE availability = 'Away'") == [(0,)]
    assert query(location, "SELECT count(*) FROM transitions") == [(10,)]
    # The in-memory snapshot did not move either: the corrected cycle records all ten changes.
    assert len(store.apply_presences("contoso", [pres(i, "Away", "Away", at=at) for i in range(10)])) == 10


# --- history, snapshots, cycles ---------------------------------------------------------------------------


def _three_steps(store: Store) -> list[datetime]:
    times = [T0 + timedelta(minutes=m) for m in (0, 10, 20)]
    for t, state in zip(times, ("Available", "Busy", "Away"), strict=True):
        store.apply_presences("contoso", [pres(1, state, state, at=t), pres(2, state, state, at=t)])
        store.apply_presences("fabrikam", [pres(7, state, state, at=t, account="fabrikam")])
    return times


def test_history_range_and_account_filters(store: Store) -> None:
    t = _three_steps(store)
    assert len(list(store.history())) == 9
    mid = list(store.history(since=t[1], until=t[2]))  # since inclusive, until exclusive
    assert {(c.account_id, c.user_id, c.to_availability) for c in mid} == {
        ("contoso", "id-1", "Busy"), ("contoso", "id-2", "Busy"), ("fabrikam", "id-7", "Busy")}
    only = list(store.history(["fabrikam"], since=t[1]))
    assert [(c.from_availability, c.to_availability) for c in only] == [("Available", "Busy"), ("Busy", "Away")]
    assert [c.changed_at for c in store.history(["contoso"])] == sorted(c.changed_at for c in store.history(["contoso"]))
    assert list(store.history([])) == []
    assert list(store.history(until=T0)) == []


def test_snapshots_give_the_state_as_of_a_time(store: Store) -> None:
    t = _three_steps(store)
    at_15 = {c.user_id: (c.to_availability, c.changed_at) for c in store.snapshots(at=t[1] + timedelta(minutes=5))}
    assert at_15 == {"id-1": ("Busy", t[1]), "id-2": ("Busy", t[1]), "id-7": ("Busy", t[1])}
    latest = {c.user_id: c.to_availability for c in store.snapshots(["contoso"])}
    assert latest == {"id-1": "Away", "id-2": "Away"}
    assert list(store.snapshots(at=T0)) == []


def test_cycles_roundtrip(store: Store) -> None:
    r = CycleResult("contoso", T0, agents=10, valid=9, resolved=8, presences=8, changes=3, requests=2,
                    throttled=1, stale=0, written_back=3, duration_s=0.25, error=None, needs_human=False)
    store.record_cycle(r)
    store.record_cycle(replace(r, account_id="fabrikam", started_at=T0 + timedelta(seconds=1),
                               error="token expired", needs_human=True))
    assert list(store.cycles(["contoso"])) == [r]
    [f] = store.cycles(since=T0 + timedelta(seconds=1))
    assert (f.account_id, f.error, f.needs_human) == ("fabrikam", "token expired", True)


# --- validation and write-back state ----------------------------------------------------------------------


def vrow(i: int, status: str = "ok", codes: tuple[str, ...] = ()) -> ValidationRow:
    return ValidationRow(i, f" User{i}@Contoso.com", f"user{i}@contoso.com", status, codes,
                         "warning" if codes else "", "", f"id-{i}")


def test_save_validation_writes_only_what_changed(sqlite_store: Store, db: Path, commits: Commits) -> None:
    store = sqlite_store
    rows = [vrow(i) for i in range(20)]
    assert store.save_validation("contoso", rows) == 20
    assert commits.since_start() == 1
    assert store.save_validation("contoso", [replace(r) for r in rows]) == 0  # equal values, new objects
    assert commits.since_start() == 1
    rows[4] = vrow(4, "fixed", ("WHITESPACE", "UNICODE"))
    assert store.save_validation("contoso", rows[:-1]) == 2  # one changed, one item gone
    store.close()
    with Store(db) as again:
        loaded = again.load_validation("contoso")
        assert loaded == rows[:-1]
        assert again.save_validation("contoso", rows[:-1]) == 0


def test_writeback_pending_returns_only_changed_items(store: Store, location: Path | str) -> None:
    desired = {i: {"Availability": "Available", "Activity": "Available"} for i in range(1, 6)}
    assert store.writeback_pending("contoso", desired) == desired  # nothing written yet
    store.mark_written("contoso", desired)
    assert store.writeback_pending("contoso", desired) == {}
    desired[3] = {"Availability": "Busy", "Activity": "InACall"}
    desired[6] = {"Availability": "Away", "Activity": "Away"}
    assert store.writeback_pending("contoso", desired) == {3: desired[3], 6: desired[6]}
    store.close()
    with Store(location) as again:
        assert set(again.writeback_pending("contoso", desired)) == {3, 6}
        again.mark_written("contoso", {3: desired[3]})
        assert set(again.writeback_pending("contoso", desired)) == {6}
        again.reset_writeback("contoso")
        assert len(again.writeback_pending("contoso", desired)) == 6


def test_a_column_left_out_keeps_its_last_written_value(store: Store, location: Path | str) -> None:
    """A stale agent's presence columns are left out of the desired values: that alone writes nothing, and what
    is written for the other columns keeps them, so the first fresh tick after the stale one writes nothing."""
    full = {i: {"UpnStatus": "ok", "Availability": "Available", "Activity": "Available"} for i in range(1, 4)}
    store.mark_written("contoso", full)
    stale = {i: {"UpnStatus": "ok"} for i in range(1, 4)}
    assert store.writeback_pending("contoso", stale) == {}
    stale[2] = {"UpnStatus": "fixed: WHITESPACE"}
    stale[3] = {"UpnStatus": "ok", "Note": "new column"}
    assert set(store.writeback_pending("contoso", stale)) == {2, 3}
    store.mark_written("contoso", {2: stale[2]})
    store.close()
    with Store(location) as again:
        fresh = {**full, 2: {**full[2], "UpnStatus": "fixed: WHITESPACE"}}
        assert again.writeback_pending("contoso", fresh) == {}  # item 2's presence columns were kept


def _open_store(path: str, start: float) -> int:
    import time as _time

    while _time.time() < start:  # both processes open the new store at the same moment
        pass
    with Store(path) as s:
        return s.schema_version


def test_two_processes_creating_one_new_store_at_once_both_succeed(tmp_path: Path) -> None:
    import multiprocessing
    import time as _time

    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        for n in range(8):
            path = str(tmp_path / f"race-{n}.sqlite")
            start = _time.time() + 0.3
            versions = pool.starmap(_open_store, [(path, start), (path, start)])
            assert versions == [SCHEMA_VERSION, SCHEMA_VERSION]


def test_a_damaged_store_is_set_aside_and_a_new_one_started(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with Store(path) as s:
        s.apply_presences("contoso", [pres(1)])
    with sqlite3.connect(path) as con:  # a schema SQLite cannot parse: nothing in the file can be read
        con.execute("PRAGMA writable_schema = ON")
        con.execute("UPDATE sqlite_master SET sql = 'garbage' WHERE name = 'users'")
    with Store(path) as s:
        assert s.schema_version == SCHEMA_VERSION and list(s.history()) == []
    aside = [p for p in tmp_path.glob("s.sqlite.damaged-*") if not p.name.endswith(("-wal", "-shm"))]
    assert len(aside) == 1 and aside[0].stat().st_size > 0  # kept for a look, never deleted


def test_salvage_copies_every_history_row_into_the_new_store(tmp_path: Path) -> None:
    from sync.store.heal import salvage, set_aside

    path = tmp_path / "s.sqlite"
    with Store(path) as s:
        s.apply_presences("contoso", [pres(1), pres(2)])
        s.apply_presences("contoso", [pres(1, "Busy", "InACall", at=T0 + timedelta(seconds=5)), pres(2)])
        s.record_cycle(CycleResult(account_id="contoso", started_at=T0))
        before = list(s.history())
    aside = set_aside(path)
    assert not path.exists() and aside.exists()
    with Store(path) as s:
        kept, lost = salvage(aside, s._db.conn)  # type: ignore[attr-defined]
        assert lost == [] and kept == len(before) + 1  # the transitions and the cycle
        assert list(s.history()) == before
