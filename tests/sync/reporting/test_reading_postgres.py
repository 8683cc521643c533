"""`export` and `report` read a PostgreSQL store as they read SQLite: the same history, written through the same
Store API into both engines, gives the same export tables and the same report; the CLI reads the store from
--store or PRESENCE_SYNC_STORE and never shows the password."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import e2e_support as sup
import pandas as pd
import pytest

from sync.bench.postgres import TemporaryPostgres
from sync.models import CycleResult, Presence, ValidationRow
from sync.reporting import build_report
from sync.reporting.data import Scope
from sync.reporting.export import export_frames
from sync.store import Store

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
STATES = ("Available", "Busy", "Away", "DoNotDisturb", "Offline")


def seed(store: Store) -> None:
    """Two accounts, 12 agents, 20 cycles of changing presence, verdicts, one cycle with an error."""
    for account in ("contoso", "fabrikam"):
        store.save_validation(account, [
            ValidationRow(i, f"agent{i}@{account}.com", f"agent{i}@{account}.com", "ok", (), "", user_id=f"{account}-{i}")
            for i in range(1, 6)] + [
            ValidationRow(6, " Agent6@x", "", "invalid", ("NOT_FOUND",), "error", "agent6@contoso.com")],
            updated_at=T0)
        for c in range(20):
            at = T0 + timedelta(minutes=7 * c)
            store.apply_presences(account, [
                Presence(account, i, f"agent{i}@{account}.com", f"{account}-{i}", f"Agent {i}",
                         STATES[(c * i + len(account)) % len(STATES)], "InACall" if (c + i) % 3 == 0 else "Available",
                         "", False, at, sequence_number=f"{c}-{i}") for i in range(1, 6)])
            store.record_cycle(CycleResult(account, at, agents=6, valid=5, resolved=5, presences=5, changes=2,
                                           requests=3, duration_s=0.25 + c / 100,
                                           error="Graph said 503" if c == 7 else None))


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, postgres: TemporaryPostgres) -> tuple[Path, str]:
    db = tmp_path_factory.mktemp("reading") / "state" / "presence-sync.sqlite"
    url = postgres.create_database("reading_both")
    for location in (db, url):
        with Store(location) as s:
            seed(s)
    return db, url


END = T0 + timedelta(days=1)  # a fixed end: without one, the snapshot is "as of now"


@pytest.mark.parametrize("scope", [
    Scope(until=END),
    Scope(accounts=("fabrikam",), since=T0 + timedelta(minutes=30), until=T0 + timedelta(hours=1, minutes=30)),
    Scope(agents=("AGENT3@contoso.com",), until=END),
    Scope(accounts=(), until=END),
])
def test_the_export_of_a_postgresql_store_equals_that_of_sqlite(stores: tuple[Path, str], scope: Scope) -> None:
    db, url = stores
    lite, pg = export_frames(db, scope, daily=True), export_frames(url, scope, daily=True)
    assert set(lite) == set(pg) == {"history", "snapshot", "cycles", "daily_summary"}
    for name in lite:
        pd.testing.assert_frame_equal(lite[name].reset_index(drop=True), pg[name].reset_index(drop=True),
                                      check_dtype=False, obj=name)
    if scope == Scope(until=END):
        assert len(pg["history"]) > 40 and len(pg["cycles"]) == 40 and len(pg["snapshot"]) == 10


def test_the_report_of_a_postgresql_store_equals_that_of_sqlite(stores: tuple[Path, str], tmp_path: Path) -> None:
    db, url = stores
    scope = Scope(since=T0 - timedelta(hours=1), until=T0 + timedelta(days=1))
    a = build_report(db, tmp_path / "lite", scope).read_text(encoding="utf-8")
    b = build_report(url, tmp_path / "pg", scope).read_text(encoding="utf-8")
    # What depends on the moment each report was built: when, and the seconds since the last cycle.
    now = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?(\.\d+)?( ?UTC|Z)?|"
                     r'(?<=data-field="seconds_since_last">)[^<]*')
    assert "fabrikam" in b and "NOT_FOUND" in b
    assert now.sub("<now>", a) == now.sub("<now>", b)


def test_the_cli_reads_the_store_from_the_flag_or_the_environment(stores: tuple[Path, str], tmp_path: Path,
                                                                   postgres: TemporaryPostgres) -> None:
    _, url = stores
    proc = sup.run_cli(["export", "--store", url, "--out", str(tmp_path / "x")], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert len(sup.read_csv(tmp_path / "x" / "export_cycles.csv")[1]) == 40
    proc = sup.run_cli(["report", "--out", str(tmp_path / "r"), "--since", "2026-11-29"], cwd=tmp_path,
                       env={"PRESENCE_SYNC_STORE": url})
    assert proc.returncode == 0, proc.stderr
    assert "fabrikam" in (tmp_path / "r" / "report.html").read_text(encoding="utf-8")
    wrong = url.replace(postgres.password, "Wr0ng-Pw-123")
    proc = sup.run_cli(["export", "--store", wrong, "--out", str(tmp_path / "y")], cwd=tmp_path)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in log and "Wr0ng-Pw-123" not in log, log
    assert "postgres:***@127.0.0.1" in log and not (tmp_path / "y").exists()
    proc = sup.run_cli(["export", "--store", "mysql://u@h/db", "--out", str(tmp_path / "z")], cwd=tmp_path)
    assert proc.returncode == 2 and "--store must be a postgresql://" in proc.stdout + proc.stderr
