"""CSV outputs on real files: exact columns, formats, injection guard, atomicity, append safety, export."""

from __future__ import annotations

import csv
import io
import stat
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import IO

import pytest

from sync.models import Change, CycleResult, Presence, ValidationRow
from sync.outputs import (
    HISTORY_COLUMNS,
    PRESENCE_COLUMNS,
    VALIDATION_COLUMNS,
    append_history_csv,
    atomic_write,
    format_utc,
    write_presence_csv,
    write_validation_csv,
)
from sync.outputs.csv import render
from sync.reporting.export import export_history
from sync.store import Store

T0 = datetime(2026, 11, 27, 6, 30, 0, 123456, tzinfo=UTC)


def pres(i: int, **kw: object) -> Presence:
    p = Presence("contoso", i, f"agent{i}@contoso.com", f"id-{i}", f"Agent {i}", "Available", "Available",
                 "", False, T0, sequence_number=f"s{i}")
    return replace(p, **kw)  # type: ignore[arg-type]


def change(i: int, at: datetime = T0, frm: str = "Available", to: str = "Busy") -> Change:
    return Change("contoso", f"agent{i}@contoso.com", f"id-{i}", frm, frm, to, to, at)


def read(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


def test_presence_csv_has_exactly_the_specified_columns_and_formats(tmp_path: Path) -> None:
    out = tmp_path / "out" / "presence.csv"
    write_presence_csv(out, [pres(1), pres(2, availability="Busy", activity="InACall", out_of_office=True,
                                          stale=True, status_message="On a call")])
    header, *rows = read(out)
    assert header == [
        "account_id", "agent_item_id", "upn", "user_id", "display_name", "availability", "activity",
        "status_message", "out_of_office", "observed_at_utc", "stale", "sequence_number",
    ]
    assert tuple(header) == PRESENCE_COLUMNS
    assert rows[0] == ["contoso", "1", "agent1@contoso.com", "id-1", "Agent 1", "Available", "Available", "",
                       "false", "2026-11-27T06:30:00.123Z", "false", "s1"]
    assert rows[1][5:11] == ["Busy", "InACall", "On a call", "true", "2026-11-27T06:30:00.123Z", "true"]


def test_timestamps_are_utc_with_milliseconds_and_z() -> None:
    paris = timezone(timedelta(hours=1))
    assert format_utc(datetime(2026, 11, 27, 7, 30, 0, 5000, tzinfo=paris)) == "2026-11-27T06:30:00.005Z"
    assert format_utc(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05.000Z"


def test_cells_that_need_quoting_survive_a_round_trip(tmp_path: Path) -> None:
    tricky = ['Lunch, back at 2', 'He said "hi"', "two\nlines", "cr\rhere", "plain"]
    rows = [pres(i, status_message=m, display_name=f"Doe, Jane {i}") for i, m in enumerate(tricky)]
    out = write_presence_csv(tmp_path / "presence.csv", rows)
    got = read(out)[1:]
    assert [r[7] for r in got] == tricky
    assert [r[4] for r in got] == [f"Doe, Jane {i}" for i in range(5)]


@pytest.mark.parametrize("cells", [
    [["a", "b"], ["c", "d"]],
    [["a,b", "x"], ["c", "d"]],
    [['q"', "x"], ["", ""]],
    [["line\nbreak", "x"], ["y", "z"]],
    [["", ""], ["", ""]],
    [["cr\rhere", "x"], ["y", "lf\nhere"]],
])
def test_render_matches_the_csv_module(cells: list[list[str]]) -> None:
    columns = [list(c) for c in zip(*cells, strict=True)]
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["h1", "h2"])
    w.writerows(cells)
    assert render(["h1", "h2"], columns) == buf.getvalue()


def test_formula_cells_get_a_leading_apostrophe(tmp_path: Path) -> None:
    evil = ["=HYPERLINK(\"http://x\")", "+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"]
    rows = [pres(i, display_name=e, status_message="a=b is fine") for i, e in enumerate(evil)]
    got = read(write_presence_csv(tmp_path / "presence.csv", rows))[1:]
    assert [r[4] for r in got] == ["'" + e for e in evil]
    assert {r[7] for r in got} == {"a=b is fine"}  # only the start of a cell matters
    verdicts = [("contoso", ValidationRow(1, "=cmd|' /C calc'!A0", "", "invalid", ("SYNTAX",), "error",
                                          "-suggested@contoso.com"))]
    vr = read(write_validation_csv(tmp_path / "validation.csv", verdicts))[1]
    assert vr[2] == "'=cmd|' /C calc'!A0" and vr[7] == "'-suggested@contoso.com"


def test_validation_csv_columns_and_values(tmp_path: Path) -> None:
    rows = [
        ("contoso", ValidationRow(3, " Ann@Contoso.com", "ann@contoso.com", "fixed", ("WHITESPACE", "UNICODE"),
                                  "warning", "", "id-3")),
        ("fabrikam", ValidationRow(4, None, "", "invalid", ("EMPTY",), "error")),
    ]
    header, a, b = read(write_validation_csv(tmp_path / "validation.csv", rows))
    assert header == ["account_id", "agent_item_id", "raw_upn", "normalized_upn", "status", "codes", "severity",
                      "suggestion", "candidates", "detail"]
    assert tuple(header) == VALIDATION_COLUMNS
    assert a == ["contoso", "3", " Ann@Contoso.com", "ann@contoso.com", "fixed", "WHITESPACE;UNICODE", "warning", "",
                 "", ""]
    assert b == ["fabrikam", "4", "", "", "invalid", "EMPTY", "error", "", "", ""]


def test_a_failing_row_leaves_the_old_file_intact(tmp_path: Path) -> None:
    out = tmp_path / "presence.csv"
    write_presence_csv(out, [pres(i) for i in range(3)])
    before = out.read_bytes()
    bad = [pres(i) for i in range(5000)] + [pres(5000, observed_at="yesterday")]
    with pytest.raises(AttributeError):
        write_presence_csv(out, bad)
    assert out.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_a_writer_failing_midway_leaves_the_old_file_intact(tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    out.write_text("old\n")

    def fill(fh: IO[str]) -> None:
        fh.write("new,row\n" * 100_000)  # several buffers' worth already in the temp file
        raise ValueError("disk said no")

    with pytest.raises(ValueError, match="disk said no"):
        atomic_write(out, fill)
    assert out.read_text() == "old\n"
    assert leftovers(tmp_path) == []


def test_rewrites_keep_the_file_mode(tmp_path: Path) -> None:
    out = write_presence_csv(tmp_path / "presence.csv", [pres(1)])
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    out.chmod(0o640)
    write_presence_csv(out, [pres(2)])
    assert stat.S_IMODE(out.stat().st_mode) == 0o640


def test_history_is_appended_with_one_header(tmp_path: Path) -> None:
    out = tmp_path / "presence_history.csv"
    assert append_history_csv(out, [change(1), change(2, T0 + timedelta(seconds=1))]) == 2
    assert append_history_csv(out, []) == 0
    assert append_history_csv(out, [change(3, frm="", to="Away")]) == 1
    header, *rows = read(out)
    assert header == ["account_id", "upn", "user_id", "from_availability", "from_activity", "to_availability",
                      "to_activity", "changed_at_utc"]
    assert tuple(header) == HISTORY_COLUMNS
    assert rows == [
        ["contoso", "agent1@contoso.com", "id-1", "Available", "Available", "Busy", "Busy",
         "2026-11-27T06:30:00.123Z"],
        ["contoso", "agent2@contoso.com", "id-2", "Available", "Available", "Busy", "Busy",
         "2026-11-27T06:30:01.123Z"],
        ["contoso", "agent3@contoso.com", "id-3", "", "", "Away", "Away", "2026-11-27T06:30:00.123Z"],
    ]


def test_a_torn_append_is_cut_off_by_the_next_one(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "presence_history.csv"
    append_history_csv(out, [change(1)])
    with out.open("ab") as fh:  # what a crash in the middle of a write leaves behind
        fh.write(b"contoso,agent9@contoso.com,id-9,Avail")
    append_history_csv(out, [change(2)])
    rows = read(out)
    assert [r[2] for r in rows[1:]] == ["id-1", "id-2"]
    assert all(len(r) == len(HISTORY_COLUMNS) for r in rows)
    assert "torn line" in caplog.text
    # A file holding only a torn header is started over.
    torn = tmp_path / "torn.csv"
    torn.write_bytes(b"account_id,up")
    append_history_csv(torn, [change(5)])
    assert read(torn)[0] == list(HISTORY_COLUMNS)


def test_export_writes_history_snapshot_and_cycles_for_a_range(tmp_path: Path) -> None:
    with Store(tmp_path / "state" / "s.sqlite") as store:
        for minute, state in ((0, "Available"), (10, "Busy"), (20, "Away")):
            at = T0 + timedelta(minutes=minute)
            store.apply_presences("contoso", [pres(1, availability=state, activity=state, observed_at=at)])
            store.apply_presences("fabrikam", [pres(2, account_id="fabrikam", availability=state,
                                                    activity=state, observed_at=at)])
            store.record_cycle(CycleResult("contoso", at, agents=1, presences=1, duration_s=0.01234))
        paths = export_history(store, tmp_path / "export", ["contoso"], since=T0 + timedelta(minutes=5),
                               until=T0 + timedelta(minutes=15))
    assert [p.name for p in paths] == ["export_history.csv", "export_snapshot.csv", "export_cycles.csv"]
    history, snapshot, cycles = (read(p) for p in paths)
    assert history[0] == list(HISTORY_COLUMNS)
    assert history[1:] == [["contoso", "agent1@contoso.com", "id-1", "Available", "Available", "Busy", "Busy",
                            "2026-11-27T06:40:00.123Z"]]
    assert snapshot[0] == ["account_id", "upn", "user_id", "availability", "activity", "since_utc", "as_of_utc"]
    assert snapshot[1:] == [["contoso", "agent1@contoso.com", "id-1", "Busy", "Busy",
                             "2026-11-27T06:40:00.123Z", "2026-11-27T06:45:00.123Z"]]
    assert [r[:3] for r in cycles[1:]] == [["contoso", "2026-11-27T06:40:00.123Z", "1"]]
    assert cycles[1][11] == "0.012"
