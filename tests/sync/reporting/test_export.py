"""`presence-sync export` end to end: the job runs a few cycles against the local tenant, then the store is
exported as CSV, xlsx and Parquet, filtered by account, agent and time, with the daily summary."""

from __future__ import annotations

import csv
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import e2e_support as sup
import pandas as pd
import pytest
from openpyxl import load_workbook

from sync.emulator.server import EmulatorServer
from sync.models import CycleResult, Presence
from sync.store import Store

TABLES = ("history", "snapshot", "cycles", "daily_summary")


@dataclass
class Job:
    state: Path
    out: Path
    root: Path


@pytest.fixture(scope="module")
def job(emulator: EmulatorServer, tenant_info: dict[str, Any], agent_lists: None,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[Job]:
    """Both tenants, presence clock at 600x so agents change state, about five cycles at --interval 1."""
    root = tmp_path_factory.mktemp("export")
    config, state, out = sup.both_tenants(root, tenant_info, emulator)
    with sup.control(emulator.base_url, emulator.tls.ca_cert) as ctl:
        ctl.post("/_emulator/reset")
        ctl.post("/_emulator/clock", json={"speed": 600})
        try:
            run = sup.Running(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out),
                               "--interval", "1", "--dry-run"], cwd=root)
            ok = run.wait_for(lambda _: all(len(run.cycle_lines(a)) >= 5 for a in ("contoso", "fabrikam")), 120)
            code = run.terminate()
            assert ok and code == 0, run.text[-3000:]
        finally:
            ctl.post("/_emulator/reset")
    yield Job(state, out, root)


def export(job: Job, out: Path, *args: str) -> Any:
    proc = sup.run_cli(["export", "--state-dir", str(job.state), "--out", str(out), *args], cwd=job.root)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def rows(path: Path) -> list[dict[str, str]]:
    return sup.read_csv(path)[1]


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_csv_export_matches_the_jobs_history_and_the_daily_summary_adds_up(job: Job, tmp_path: Path) -> None:
    proc = export(job, tmp_path, "--daily-summary")
    assert proc.returncode == 0, proc.stderr
    assert [Path(p).name for p in proc.stdout.split()] == [f"export_{t}.csv" for t in TABLES]
    assert "export: step 1/8: reading history" in proc.stderr  # plain progress lines when not a terminal
    history = rows(tmp_path / "export_history.csv")
    job_history = rows(job.out / "presence_history.csv")
    assert Counter(tuple(r.values()) for r in history) == Counter(tuple(r.values()) for r in job_history)
    assert sum(r["from_availability"] != "" for r in history) > 0, "the presence clock made no change"

    daily = rows(tmp_path / "export_daily_summary.csv")
    header = list(daily[0])
    assert header[:4] == ["account_id", "upn", "user_id", "date_utc"] and header[-1] == "observed_s"
    states = header[4:-1]
    assert set(states) <= {"Available", "AvailableIdle", "Busy", "BusyIdle", "DoNotDisturb", "BeRightBack", "Away",
                           "Offline", "PresenceUnknown"}
    # Each agent was observed from its first transition until its account's last cycle ended.
    cycles = rows(tmp_path / "export_cycles.csv")
    last_end = {a: max(utc(c["started_at_utc"]) + timedelta(seconds=float(c["duration_s"]))
                       for c in cycles if c["account_id"] == a) for a in ("contoso", "fabrikam")}
    first_seen: dict[tuple[str, str], datetime] = {}
    for r in history:
        first_seen.setdefault((r["account_id"], r["user_id"]), utc(r["changed_at_utc"]))
    observed: Counter[tuple[str, str]] = Counter()
    for d in daily:
        assert sum(int(d[s]) for s in states) == int(d["observed_s"])
        observed[(d["account_id"], d["user_id"])] += int(d["observed_s"])
    assert set(observed) <= set(first_seen)
    for key, seconds in observed.items():
        expected = (last_end[key[0]] - first_seen[key]).total_seconds()
        assert abs(seconds - expected) <= 1.0 + len(states), (key, seconds, expected)
    # The time in each state agrees with the transitions: an agent that never changed spent it all in one state.
    steady = {k for k in first_seen if sum((r["account_id"], r["user_id"]) == k for r in history) == 1}
    for d in daily:
        if (d["account_id"], d["user_id"]) in steady:
            assert sorted(int(d[s]) for s in states)[:-1] == [0] * (len(states) - 1)


def test_filters_by_account_agent_and_time(job: Job, tmp_path: Path) -> None:
    history = rows(job.out / "presence_history.csv")
    busiest = Counter((r["account_id"], r["upn"]) for r in history).most_common(1)[0][0]
    proc = export(job, tmp_path / "agent", "--agent", busiest[1].upper(), "--daily-summary")
    assert proc.returncode == 0, proc.stderr
    for table in ("history", "snapshot", "daily_summary"):
        got = rows(tmp_path / "agent" / f"export_{table}.csv")
        assert got and {r["upn"] for r in got} == {busiest[1]}, table
    assert len(rows(tmp_path / "agent" / "export_history.csv")) == sum(
        (r["account_id"], r["upn"]) == busiest for r in history)

    proc = export(job, tmp_path / "fab", "--account", "fabrikam", "--daily-summary")
    assert proc.returncode == 0, proc.stderr
    for table in TABLES:
        assert {r["account_id"] for r in rows(tmp_path / "fab" / f"export_{table}.csv")} == {"fabrikam"}, table

    times = sorted(utc(r["changed_at_utc"]) for r in history)
    middle = times[len(times) // 2]
    proc = export(job, tmp_path / "late", "--since", middle.isoformat(), "--daily-summary")
    assert proc.returncode == 0, proc.stderr
    late = rows(tmp_path / "late" / "export_history.csv")
    assert late and all(utc(r["changed_at_utc"]) >= middle for r in late)
    assert len(late) == sum(t >= middle for t in times)


def test_xlsx_and_parquet_hold_the_same_rows_as_csv(job: Job, tmp_path: Path) -> None:
    assert export(job, tmp_path / "csv", "--daily-summary").returncode == 0
    proc = export(job, tmp_path / "xlsx", "--format", "xlsx", "--daily-summary")
    assert proc.returncode == 0, proc.stderr
    book = load_workbook(tmp_path / "xlsx" / "export.xlsx", read_only=True)
    assert book.sheetnames == list(TABLES)
    for table in TABLES:
        header, body = sup.read_csv(tmp_path / "csv" / f"export_{table}.csv")
        sheet = list(book[table].iter_rows(values_only=True))
        assert list(sheet[0]) == header and len(sheet) - 1 == len(body), table
    first = list(book["history"].iter_rows(min_row=2, max_row=2, values_only=True))[0]
    assert isinstance(first[7], datetime)  # changed_at_utc is a date-time cell, not text

    proc = export(job, tmp_path / "pq", "--format", "parquet", "--daily-summary")
    assert proc.returncode == 0, proc.stderr
    for table in TABLES:
        frame = pd.read_parquet(tmp_path / "pq" / f"export_{table}.parquet")
        header, body = sup.read_csv(tmp_path / "csv" / f"export_{table}.csv")
        assert list(frame.columns) == header and len(frame) == len(body), table
    history = pd.read_parquet(tmp_path / "pq" / "export_history.parquet")
    assert str(history["changed_at_utc"].dt.tz) == "UTC"
    assert not list(tmp_path.rglob("*.tmp"))  # every file was renamed into place


def test_bad_format_and_missing_store_are_usage_errors(job: Job, tmp_path: Path) -> None:
    proc = export(job, tmp_path, "--format", "ods")
    assert proc.returncode == 2 and "--format must be one of csv, xlsx, parquet" in proc.stderr
    proc = sup.run_cli(["export", "--state-dir", str(tmp_path / "none"), "--out", str(tmp_path)], cwd=tmp_path)
    assert proc.returncode == 2 and "no store at" in proc.stderr and "Traceback" not in proc.stderr


def test_formula_cells_are_inert_in_csv_and_xlsx(tmp_path: Path) -> None:
    """UPNs come from a directory an attacker may write to: cells starting with = + - @ stay text."""
    t0 = datetime(2026, 11, 27, 6, 30, tzinfo=UTC)
    nasty = ['=HYPERLINK("http://x","y")@contoso.com', "+1@contoso.com", "-2@contoso.com", "@SUM(1)@contoso.com"]
    state = tmp_path / "state"
    with Store(state / "presence-sync.sqlite") as store:
        store.apply_presences("contoso", [Presence("contoso", i, upn, f"id-{i}", "x", "Available", "Available", "",
                                                   False, t0) for i, upn in enumerate(nasty)])
        store.record_cycle(CycleResult("contoso", t0 + timedelta(minutes=1), agents=4, duration_s=0.5))
    for fmt in ("csv", "xlsx"):
        proc = sup.run_cli(["export", "--state-dir", str(state), "--out", str(tmp_path / fmt), "--format", fmt,
                            "--daily-summary"], cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
    for table in ("history", "snapshot", "daily_summary"):
        with (tmp_path / "csv" / f"export_{table}.csv").open(newline="", encoding="utf-8") as fh:
            upns = sorted(r["upn"] for r in csv.DictReader(fh))
        assert upns == sorted("'" + u for u in nasty), table
    book = load_workbook(tmp_path / "xlsx" / "export.xlsx")
    for table in ("history", "snapshot", "daily_summary"):
        sheet = book[table]
        col = [c.value for c in sheet[1]].index("upn") + 1
        cells = [sheet.cell(row=r, column=col) for r in range(2, sheet.max_row + 1)]
        assert sorted(c.value for c in cells) == sorted(nasty), table  # the value itself is untouched
        assert all(c.data_type == "s" and c.quotePrefix for c in cells), table  # text, shown as typed
