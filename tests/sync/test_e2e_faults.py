"""An interval run through a 429 burst and a 5xx burst on the presence path, with the presence clock running fast,
compared with the tenant's ground-truth presence log: no transition lost, none invented, Retry-After honoured.

How the comparison stays sound: the job samples presence once per cycle. The store's ``cycles`` table says when each
cycle ran (``started_at`` + ``duration_s``, wall time); the presence request of that cycle was answered inside that
span, which maps to a span of the emulator's presence clock (set and sped up by the test, so the mapping is known).
For every agent and every successful cycle, the state the job claims (the last ``presence_history.csv`` row at or
before that cycle) must be a state the ground truth held inside that span; and whenever the ground truth's state
is unambiguous at two consecutive successful samples and differs, the history must hold exactly one transition at
the later sample with exactly that from/to. First observations (from "") are the baseline, not transitions.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import e2e_support as sup
import httpx

from sync.emulator.server import EmulatorServer

SPEED = 60.0  # presence seconds per wall second: an agent changes state every few wall seconds
START = "2026-03-04T14:30:00Z"  # a Wednesday afternoon in Europe, morning in New York: people are working
PRESENCE_PATH = ["/v1.0/communications"]
MARGIN = timedelta(seconds=0.05 * SPEED)  # 50 ms of wall time, for clock reads on either side

Pair = tuple[str, str]


def parse_ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat().replace("+00:00", "Z")


def cycles_of(state: Path) -> dict[str, list[dict[str, Any]]]:
    """Every recorded cycle per account: wall-time span, stale count."""
    conn = sqlite3.connect(f"file:{state / 'presence-sync.sqlite'}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT account_id, started_at, duration_s, stale, presences FROM cycles "
                            "ORDER BY started_at").fetchall()
    finally:
        conn.close()
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for acc, started, dur, stale, presences in rows:
        start = parse_ts(started)
        out[acc].append({"start": start, "end": start + timedelta(seconds=dur), "ok": stale == 0 and presences > 0})
    return out


class GroundTruth:
    """One tenant's presence per user over a presence-clock span: the initial pair plus pair changes."""

    def __init__(self, ctl: httpx.Client, tenant: str, since: datetime, until: datetime, ids: set[str]) -> None:
        at = ctl.get("/_emulator/presence", params={"tenant": tenant, "at": iso(since)}).json()["value"]
        self.initial: dict[str, Pair] = {p["id"]: (p["availability"], p["activity"]) for p in at if p["id"] in ids}
        log = ctl.get("/_emulator/presence-log", params={"tenant": tenant, "since": iso(since),
                                                           "until": iso(until)}).json()["value"]
        self.changes: dict[str, list[tuple[datetime, Pair, Pair]]] = defaultdict(list)
        for t in log:
            frm = (t["from"]["availability"], t["from"]["activity"])
            to = (t["to"]["availability"], t["to"]["activity"])
            if t["user_id"] in ids and frm != to:  # status-message-only changes are not transitions
                self.changes[t["user_id"]].append((parse_ts(t["at"]), frm, to))
        missing = ids - set(self.initial)
        assert not missing, f"{tenant}: no ground truth for {sorted(missing)[:5]}"

    def states(self, uid: str, lo: datetime, hi: datetime) -> set[Pair]:
        """Every pair the user held at some instant of [lo, hi]."""
        state = self.initial[uid]
        seen: set[Pair] = set()
        for at, _frm, to in self.changes.get(uid, []):
            if at <= lo:
                state = to
            elif at <= hi:
                seen.add(to)
        return {state} | seen

    def total_changes(self) -> int:
        return sum(len(v) for v in self.changes.values())


def test_interval_run_through_429_and_5xx_bursts_loses_no_transition(
        tmp_path: Path, emulator: EmulatorServer, tenant_info: dict[str, Any], ctl: httpx.Client) -> None:
    config, state, out = sup.both_tenants(tmp_path, tenant_info, emulator)

    ctl.post("/_emulator/clock", json={"set": START, "speed": SPEED})
    clock = emulator.state.clock
    p0, w0 = clock.now(), time.time()

    def presence_time(wall: datetime) -> datetime:
        return p0 + timedelta(seconds=(wall.timestamp() - w0) * SPEED)

    def cycles_done(n: int) -> Any:
        return lambda lines: all(sum(sup.CYCLE_MARK in ln and f"account {a}:" in ln for ln in lines) >= n
                                 for a in ("contoso", "fabrikam"))

    job = sup.Running(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out),
                       "--interval", "1"], cwd=tmp_path)
    try:
        assert job.wait_for(cycles_done(2), 30), job.text
        # A 429 burst: the next 4 presence requests (either tenant) are throttled with Retry-After 1.0 s.
        ctl.post("/_emulator/faults", json={"burst_429": 4, "burst_retry_after": 1.0, "paths": PRESENCE_PATH})
        n = len(job.cycle_lines("contoso"))
        assert job.wait_for(cycles_done(n + 2), 30), job.text
        assert ctl.get("/_emulator/faults").json()["burst_429"] == 0
        # A 5xx burst: every presence request fails for a second.
        ctl.post("/_emulator/faults", json={"error_rate": 1.0, "seed": 3, "paths": PRESENCE_PATH})
        time.sleep(1.0)
        ctl.post("/_emulator/faults", json={"error_rate": 0.0})
        # Ticks that met the faults report their agents stale (the next tick reads them): enough clean ticks follow.
        n = len(job.cycle_lines("contoso"))
        assert job.wait_for(cycles_done(n + 4), 30), job.text
    finally:
        code = job.terminate(signal.SIGTERM, timeout=15)
    assert code == 0, job.text[-3000:]
    assert "Traceback" not in job.text

    stats = ctl.get("/_emulator/stats").json()
    assert stats["throttled"] > 0, stats
    assert stats["retry_after_violations"] == 0, stats
    assert sum(v for k, v in stats["faults_injected"].items() if k.startswith("error_5")) > 0, stats
    assert sum(int(ln.split("429s=")[1].split()[0]) for ln in job.cycle_lines()) > 0  # the job saw them too
    assert any("answered 429; the next tick asks again after the Retry-After; Graph answered 429" in ln
               or "retried after their Retry-After; Graph answered 429" in ln for ln in job.cycle_lines()), job.text

    # Complete CSVs after SIGTERM.
    presence = sup.assert_leading_columns(out / "presence.csv", sup.PRESENCE_COLUMNS)
    history = sup.assert_leading_columns(out / "presence_history.csv", sup.HISTORY_COLUMNS)
    sup.assert_leading_columns(out / "validation.csv", sup.VALIDATION_COLUMNS)

    cycles = cycles_of(state)
    problems: list[str] = []
    checked_changes = 0
    recorded = 0
    for acc, tenant in (("contoso", "contoso"), ("fabrikam", "fabrikam")):
        runs = cycles[acc]
        ok = [c for c in runs if c["ok"]]
        assert len(ok) >= 6, f"{acc}: only {len(ok)} successful cycles"
        ids = {r["user_id"] for r in presence if r["account_id"] == acc}
        since = presence_time(runs[0]["start"]) - MARGIN
        until = presence_time(runs[-1]["end"]) + MARGIN
        truth = GroundTruth(ctl, tenant, since, until, ids)
        windows = [(presence_time(c["start"]) - MARGIN, presence_time(c["end"]) + MARGIN) for c in ok]

        # Each history row belongs to exactly one successful cycle of its account; one row per user per cycle.
        rows_by_user: dict[str, list[tuple[int, dict[str, str]]]] = defaultdict(list)
        for r in (r for r in history if r["account_id"] == acc):
            when = parse_ts(r["changed_at_utc"])
            idx = [i for i, c in enumerate(ok) if c["start"] - timedelta(milliseconds=2) <= when
                   <= c["end"] + timedelta(milliseconds=2)]
            if len(idx) != 1:
                problems.append(f"{acc} {r['upn']}: transition at {r['changed_at_utc']} matches {len(idx)} cycles")
                continue
            rows_by_user[r["user_id"]].append((idx[0], r))
        for uid in ids:
            rows = rows_by_user.get(uid, [])
            if Counter(i for i, _ in rows) and max(Counter(i for i, _ in rows).values()) > 1:
                problems.append(f"{acc} {uid}: two transitions in one cycle")
            if not rows or rows[0][0] != 0 or rows[0][1]["from_availability"] != "":
                problems.append(f"{acc} {uid}: no baseline row in the first cycle")
                continue
            for (_, a), (_, b) in zip(rows, rows[1:], strict=False):  # the history is a chain
                if (b["from_availability"], b["from_activity"]) != (a["to_availability"], a["to_activity"]):
                    problems.append(f"{acc} {uid}: transition at {b['changed_at_utc']} does not start where the "
                                    f"previous one ended")
            recorded += len(rows) - 1
            claimed: list[Pair] = []
            for k in range(len(ok)):
                last = [r for i, r in rows if i <= k][-1]
                claimed.append((last["to_availability"], last["to_activity"]))
            truth_at = [truth.states(uid, lo, hi) for lo, hi in windows]
            for k, (lo, hi) in enumerate(windows):
                if claimed[k] not in truth_at[k]:
                    problems.append(f"{acc} {uid}: cycle {k} claims {claimed[k]}, the tenant had {truth_at[k]} "
                                    f"between {iso(lo)} and {iso(hi)}")
            for k in range(1, len(ok)):
                before, after = truth_at[k - 1], truth_at[k]
                if len(before) == 1 and len(after) == 1 and before != after:
                    checked_changes += 1
                    want = (*next(iter(before)), *next(iter(after)))
                    got = [(r["from_availability"], r["from_activity"], r["to_availability"], r["to_activity"])
                           for i, r in rows if i == k]
                    if got != [want]:
                        problems.append(f"{acc} {uid}: between cycles {k - 1} and {k} the tenant went "
                                        f"{want[:2]} -> {want[2:]}, the history has {got}")
        assert truth.total_changes() > 0, f"{acc}: the tenant's presence did not change during the run"
    assert not problems, f"{len(problems)} problem(s):\n" + "\n".join(problems[:40])
    assert checked_changes >= 10 and recorded >= checked_changes, (checked_changes, recorded)
