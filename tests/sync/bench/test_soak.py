"""The soak program, one minute long: every fault switch on for 42 s, then off; every target is asserted. Also the
rules that compare the job's history with the tenant's, with plain values."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sync.bench.truth import (
    ClockMap,
    Row,
    compare,
    duplicates,
    parse_time,
    pause_windows,
    segments,
    unmatched,
)

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def soak(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    """One one-minute soak (every fault switch on for 42 s, then none) for the tests below."""
    tmp = tmp_path_factory.mktemp("soak")
    out = tmp / "soak.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "soak.py"), "--minutes", "1", "--json", str(out),
                           "--dir", str(tmp / "work")], capture_output=True, text=True, timeout=240)
    assert out.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out.read_text(encoding="utf-8")), proc.stdout


def test_a_one_minute_soak_meets_its_targets(soak: tuple[dict[str, Any], str]) -> None:
    figures, stdout = soak
    failed = [t for t in figures["targets"] if not t["pass"]]
    assert not failed, f"{failed}\n{stdout[-3000:]}"
    assert "verdict: PASS" in stdout
    # The run was a real one: faults hit, transitions happened and were compared, the job recovered.
    assert sum(figures["faults_injected"].values()) > 0 and figures["throttled"] > 0
    assert figures["transitions"]["segments_counted"] >= 50
    assert figures["leaks"]["secrets"] >= 4 and figures["leaks"]["files"] >= 5
    assert all(v is not None for v in figures["recovery_s"].values())


# --- the comparison rules, with plain values (sync.bench.truth) ------------------------------------------------

AV, BUSY, AWAY = ("Available", "Available"), ("Busy", "InACall"), ("Away", "Away")


def _row(to: tuple[str, str], at: float, frm: tuple[str, str] = ("", "")) -> Row:
    return Row("a", "u1", frm, to, at)


def test_a_state_the_job_saw_late_is_seen_and_one_it_never_claimed_is_lost() -> None:
    truth = {"u1": segments(AV, [(10.0, BUSY), (15.0, AWAY)], 0.0, 30.0)}
    seen = [_row(AV, 0.5), _row(BUSY, 11.0, AV), _row(AWAY, 16.2, BUSY)]
    assert compare(truth, seen, [(0.5, 30.0)], interval=1.0).to_json()["lost"] == 0
    missed = [_row(AV, 0.5), _row(AWAY, 16.2, AV)]
    res = compare(truth, missed, [(0.5, 30.0)], interval=1.0)
    assert (res.counted, len(res.lost), len(res.invented)) == (3, 1, 0)
    assert "Busy/InACall held 5.0 s" in res.lost[0]


def test_states_while_the_job_was_down_or_too_short_are_not_counted() -> None:
    truth = {"u1": segments(AV, [(10.0, BUSY), (15.0, AWAY), (15.5, AV)], 0.0, 30.0)}
    rows = [_row(AV, 0.5), _row(AV, 20.5, AV)]
    # Busy [10, 15) fell in the down time [8, 20); Away lasted 0.5 s: neither can count as lost.
    res = compare(truth, rows, [(0.5, 8.0), (20.5, 30.0)], interval=1.0)
    assert (len(res.lost), res.counted) == (0, 2)
    assert duplicates(rows) == {"same_state": 1, "identical": 0}


def test_a_transition_to_a_state_the_tenant_never_held_then_is_invented() -> None:
    truth = {"u1": segments(AV, [(10.0, BUSY)], 0.0, 30.0)}
    rows = [_row(AV, 0.5), _row(AWAY, 5.0, AV), _row(BUSY, 10.4, AWAY), _row(BUSY, 10.4, AWAY)]
    res = compare(truth, rows, [(0.5, 30.0)], interval=1.0)
    assert len(res.invented) == 1 and "Available/Available -> Away/Away" in res.invented[0]
    assert duplicates(rows) == {"same_state": 1, "identical": 1}


def test_the_clock_map_round_trips() -> None:
    clock = ClockMap(parse_time("2026-03-04T14:30:00Z"), 1000.0, 60.0)
    assert clock.to_presence(1001.0) == parse_time("2026-03-04T14:31:00Z")
    assert clock.to_wall(parse_time("2026-03-04T14:31:00Z")) == 1001.0


def test_a_history_row_the_csv_lacks_is_found() -> None:
    store = [_row(AV, 0.5), _row(BUSY, 11.0, AV), _row(AV, 12.0, BUSY), _row(BUSY, 14.0, AV)]
    csv_rows = [_row(AV, 0.5004), _row(BUSY, 11.0, AV), _row(BUSY, 14.0, AV)]  # CSV times are to the ms
    assert unmatched(store, csv_rows) == {"missing_from_csv": 1, "not_in_store": 0}
    assert duplicates(csv_rows)["same_state"] == 1


def test_a_state_inside_the_tenants_retry_after_pause_is_unreadable_not_lost() -> None:
    """Busy held 2.5 s from 10.0; the tenant answered the read at 10.2 with 429 Retry-After 2.5 s (the last read
    before it was at 9.2): no client that honours Retry-After and reads every second could have seen it."""
    truth = {"u1": segments(AV, [(10.0, BUSY), (12.5, AWAY), (30.0, AV)], 0.0, 40.0)}
    rows = [_row(AV, 0.5), _row(AWAY, 12.8, AV), _row(AV, 30.6, AWAY)]
    res = compare(truth, rows, [(0.5, 40.0)], interval=1.0, pauses=[[10.2, 12.7]])
    assert (len(res.lost), len(res.unreadable)) == (0, 1) and "Busy/InACall held 2.5 s" in res.unreadable[0]
    # The same state outside any pause, or only partly inside one, is lost.
    assert (len(compare(truth, rows, [(0.5, 40.0)], interval=1.0).lost)) == 1
    partly = compare(truth, rows, [(0.5, 40.0)], interval=1.0, pauses=[[10.2, 11.0]])
    assert (len(partly.lost), len(partly.unreadable)) == (1, 0)
    # Two 429s in a row (the retry after the first pause met a second one) make one window.
    assert pause_windows([[10.2, 11.0], [11.01, 12.7]], 1.0) == [(9.2, pytest.approx(12.95))]
