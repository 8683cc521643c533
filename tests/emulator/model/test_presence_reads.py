"""The presence read log: last read per id, gaps between reads, busiest 30 s of calls."""

from __future__ import annotations

import time

import httpx
import pytest

from sync.emulator.model.presence_reads import PresenceReads
from sync.emulator.server import EmulatorServer

from ..conftest import CONTOSO


class FakeClock:
    def __init__(self) -> None:
        self.t = 500.0

    def __call__(self) -> float:
        return self.t


def test_gaps_histogram_and_busiest_window() -> None:
    clock = FakeClock()
    log = PresenceReads(now=clock)
    assert log.summary()["first_read_at"] is None and log.summary()["gap_p50"] is None
    clock.t += 2.0
    log.record("t1", ["a", "b"])
    clock.t += 10.0
    log.record("t1", ["a", "b", "c"])  # gaps 10 s, 10 s
    clock.t += 25.0
    log.record("t1", ["a"])  # gap 25 s
    clock.t += 200.0
    log.record("t1", ["c"])  # gap 225 s: past the histogram, reported as the max
    log.record("t2", ["z"])
    s = log.summary("t1")
    assert (s["reads"], s["ids"], s["calls"]) == (7, 3, 4)
    assert s["gap_p50"] == pytest.approx(10.001) and s["gap_p95"] == pytest.approx(225.0)
    assert s["gap_max"] == pytest.approx(225.0)
    assert s["busiest_30s_calls"] == 2  # the calls at +12 s and +37 s are 25 s apart
    assert s["first_read_at"] == pytest.approx(2.0)
    merged = log.summary()
    assert merged["reads"] == 8 and merged["ids"] == 4 and merged["calls"] == 5
    log.reset()
    assert log.summary()["reads"] == 0


def test_presence_reads_over_https(graph: httpx.Client, emulator: EmulatorServer) -> None:
    assert graph.post("/_emulator/presence-reads/reset").json() == {"reset": True}
    ids = sorted(emulator.state.world.tenants[CONTOSO].users)[:3]
    assert graph.post("/v1.0/communications/getPresencesByUserId", json={"ids": ids}).status_code == 200
    time.sleep(0.05)
    assert graph.post("/v1.0/communications/getPresencesByUserId", json={"ids": ids[:2]}).status_code == 200
    assert graph.get(f"/v1.0/users/{ids[0]}/presence").status_code == 200
    assert graph.post("/v1.0/communications/getPresencesByUserId", json={"ids": ["nope"]}).status_code == 400
    s = graph.get("/_emulator/presence-reads", params={"tenant": "contoso"}).json()
    assert (s["reads"], s["ids"], s["calls"]) == (6, 3, 3)
    assert 0.04 <= s["gap_p50"] <= 5 and s["gap_max"] >= s["gap_p99"] >= s["gap_p50"]
    assert s["busiest_30s_calls"] == 3 and s["first_read_at"] >= 0
    assert graph.get("/_emulator/presence-reads").json()["reads"] == 6  # every tenant merged
    graph.post("/_emulator/reset")
    assert graph.get("/_emulator/presence-reads").json()["calls"] == 0


def test_calls_of_one_token_amid_anothers_are_counted_and_a_handover_is_not() -> None:
    """One process reading every second, a second one taking over cleanly (even 0.2 s after the last read of the
    first), then the first reading again amid the second's reads: only those calls count."""
    log = PresenceReads(now=FakeClock())
    for t in (0.0, 1.0, 2.0, 3.0):
        log.record("t1", ["a"], at=t, caller="old")
    for t in (3.2, 4.2, 5.2):  # a handover
        log.record("t1", ["a"], at=t, caller="new")
    log.record("t1", ["a"], at=5.5, caller="old")  # the old reader, resumed: two readers at once
    for t in (6.2, 7.2):
        log.record("t1", ["a"], at=t, caller="new")
    log.record("t2", ["b"], at=6.6, caller="other-tenant")
    summary = log.summary("t1")
    assert summary["callers"] == 2 and summary["interleaved"] == 1 and summary["token_changes"] == 3
    assert log.summary("t1", within=0.5)["interleaved"] == 0  # 5.2 -> 6.2 is 1 s
    assert log.summary("t2")["interleaved"] == 0 and log.summary()["callers"] == 3
