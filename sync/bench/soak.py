"""The soak: ``presence-sync run --interval 1`` for two accounts against the local tenant with every fault switch
on for the first 70 % of the time, then with none, then SIGTERM; what it did, against the tenant's own records.

- The tenant runs in this process; its presence clock runs ``speed`` x (60: an agent changes state every few
  wall seconds), mapped back to wall time for the comparison (``sync.bench.truth``).
- Faults (``/_emulator/faults``, on ``/v1.0`` and ``/sites``): 5xx answers, dropped connections, truncated and
  malformed bodies, 429 items inside Graph ``$batch``, slow SharePoint (``latency sites=P50:P99``), a burst of
  429s re-armed every ``burst_every`` s and every token revoked every ``revoke_every`` s.
- Figures: crashes (the job ended before it was told to), exit code, Retry-After violations (the tenant's count),
  lost and invented transitions (a state wholly inside a window in which the tenant forbade presence reads is
  counted apart: ``sync.bench.truth``), duplicate history rows (store and CSV), the longest gap between two presence
  reads of one agent per account (the tenant's read log; the faulty part and the fault-free part separately),
  recovery (from faults off to each account's next good tick, by the job's own cycle lines), secrets in clear
  in every file of the state and out directories and in the job's output.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .harness import (
    ACCOUNTS,
    STOPPED,
    Job,
    Tenant,
    check_csvs,
    first_good_reads,
    good_cycle,
    history_csv_rows,
    in_tenant,
    leaks,
    report_figures,
    truth_figures,
    write_config,
)
from .truth import duplicates, load_rows, unmatched

__all__ = ["SoakOptions", "run_soak", "soak_targets"]


@dataclass(frozen=True)
class SoakOptions:
    minutes: float = 10.0
    interval: float = 1.0
    writeback: float = 5.0  # WriteBack/@Interval: write-back and roster re-reads every 5 s
    speed: float = 60.0
    fault_share: float = 0.7
    error_rate: float = 0.03
    reset_rate: float = 0.01
    truncate_rate: float = 0.01
    malformed_rate: float = 0.01
    batch_item_429_rate: float = 0.05
    latency: str = "sites=200:1500"
    burst: int = 4
    burst_retry_after: float = 1.0
    burst_every: float = 20.0
    revoke_every: float = 60.0
    seed: int = 7


def _say(msg: str) -> None:
    print(msg, flush=True)


def _faults_on(tenant: Tenant, o: SoakOptions) -> None:
    tenant.post("/_emulator/faults", {
        "replace": True, "error_rate": o.error_rate, "reset_rate": o.reset_rate, "truncate_rate": o.truncate_rate,
        "malformed_rate": o.malformed_rate, "batch_item_429_rate": o.batch_item_429_rate, "latency": o.latency,
        "burst_429": o.burst, "burst_retry_after": o.burst_retry_after, "seed": o.seed})


def _drive(tenant: Tenant, job: Job, o: SoakOptions, until: float, faults: bool) -> bool:
    """Keep the faults going until ``until``; False when the job ended on its own."""
    rng = random.Random(o.seed)
    span = max(1.0, until - time.time())
    burst_every = min(o.burst_every, span / 4)  # a short run gets a few of each too
    revoke_every = min(o.revoke_every, span / 3) if o.revoke_every > 0 else float("inf")
    next_burst = time.time() + burst_every
    next_revoke = time.time() + revoke_every
    while time.time() < until:
        if job.proc.poll() is not None:
            return False
        now = time.time()
        tenant.collect_secrets()
        if faults and now >= next_burst:
            tenant.post("/_emulator/faults", {"burst_429": o.burst,
                                              "burst_retry_after": round(rng.uniform(0.5, 2.0), 3)})
            next_burst = now + burst_every
        if faults and now >= next_revoke:
            tenant.post("/_emulator/faults", {"revoke_tokens": True})
            next_revoke = now + revoke_every
        time.sleep(min(1.0, max(0.0, until - time.time())))
    return job.proc.poll() is None


def _recovery(job: Job, off: float) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for acc in ACCOUNTS:
        after = [t for t, ln in job.cycles(acc) if t > off and good_cycle(ln)]
        out[acc] = round(after[0] - off, 3) if after else None
    return out


def _reads(tenant: Tenant) -> dict[str, Any]:
    return {acc: tenant.get("/_emulator/presence-reads", tenant=acc) for acc in ACCOUNTS}


def run_soak(o: SoakOptions, work: Path | None = None) -> dict[str, Any]:
    """Run the soak and return its figures (``soak_targets`` judges them)."""
    return in_tenant("presence-soak-", work, lambda tenant, where: _soak(tenant, o, where))


def _soak(tenant: Tenant, o: SoakOptions, work: Path) -> dict[str, Any]:
    state, out = work / "state", work / "out"
    config = write_config(tenant.info, tenant.ca_file, state, work / "config.xml", writeback=o.writeback)
    clock = tenant.start_clock(o.speed)
    tenant.post("/_emulator/stats/reset")
    tenant.post("/_emulator/presence-reads/reset")
    total = o.minutes * 60
    _faults_on(tenant, o)
    start = time.time()
    _say(f"soak: {o.minutes:g} min, faults on for {total * o.fault_share:.0f} s, presence clock {o.speed:g}x; "
         f"work dir {work}")
    job = Job(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out),
               "--interval", f"{o.interval:g}"], cwd=work)
    alive = _drive(tenant, job, o, start + total * o.fault_share, faults=True)
    fault_reads = _reads(tenant)
    tenant.post("/_emulator/faults", {"reset": True})
    off = time.time()
    tenant.post("/_emulator/presence-reads/reset")
    _say(f"faults off after {off - start:.0f} s")
    alive = alive and _drive(tenant, job, o, start + total, faults=False)
    clean_reads = _reads(tenant)
    stats = tenant.get("/_emulator/stats")
    end = time.time()
    crashed = not alive or job.proc.poll() is not None
    code = job.stop()
    (work / "job.log").write_text(job.text, encoding="utf-8")
    tenant.collect_secrets()
    db = state / "presence-sync.sqlite"
    rows = load_rows(db)
    firsts = first_good_reads(db, start, end)
    up = {acc: [(firsts[acc], end)] for acc in firsts}
    pauses = {a: fault_reads[a].get("retry_after_pauses", []) + clean_reads[a].get("retry_after_pauses", [])
              for a in ACCOUNTS}
    truth = truth_figures(tenant, clock, rows, up, interval=o.interval, start=start, end=end, pauses=pauses)
    gaps_faulty = {a: fault_reads[a].get("gap_max") for a in ACCOUNTS}
    gaps_clean = {a: clean_reads[a].get("gap_max") for a in ACCOUNTS}
    return {
        "options": o.__dict__, "clock": {"p0": clock.p0.isoformat(), "w0": clock.w0, "speed": clock.speed},
        "seconds": round(end - start, 1), "faults_seconds": round(off - start, 1),
        "crashed": crashed, "exit_code": code, "traceback": "Traceback" in job.text,
        "accounts_stopped": job.text.count(STOPPED),
        "retry_after_violations": stats["retry_after_violations"], "throttled": stats["throttled"],
        "retry_after_violations_by": stats.get("retry_after_violations_by", {}),
        "retry_after_violations_recent": stats.get("retry_after_violations_recent", []),
        "faults_injected": stats["faults_injected"],
        "ticks": {a: len(job.cycles(a)) for a in ACCOUNTS},
        "good_ticks": {a: sum(1 for _, ln in job.cycles(a) if good_cycle(ln)) for a in ACCOUNTS},
        "transitions": truth, "retry_after_pauses": pauses,
        "duplicates_store": duplicates(rows), "duplicates_csv": duplicates(history_csv_rows(out)),
        "history_csv_vs_store": unmatched(rows, history_csv_rows(out)),
        "history_rows": len(rows),
        "gap_max_with_faults": gaps_faulty, "gap_max_fault_free": gaps_clean,
        "gap_max_whole_run": {a: max((g for g in (gaps_faulty[a], gaps_clean[a]) if g is not None), default=None)
                              for a in ACCOUNTS},
        "recovery_s": _recovery(job, off),
        "csvs": check_csvs(out),
        "leaks": leaks(tenant.secrets, [state, out, work / "config.xml", work / "job.log"], [job.text]),
    }


def soak_targets(f: dict[str, Any]) -> list[tuple[str, Any, str, bool]]:
    interval = f["options"]["interval"]
    gap = max((g for g in f["gap_max_fault_free"].values() if g is not None), default=None)
    rec = list(f["recovery_s"].values())
    recovery = max(rec) if rec and None not in rec else None
    dup = sum(f["duplicates_store"].values()) + sum(f["duplicates_csv"].values())
    return [
        ("crashes", int(f["crashed"]), "0", not f["crashed"]),
        ("exit code after SIGTERM", f["exit_code"], "0", f["exit_code"] == 0),
        ("accounts stopped by an unexpected error", f["accounts_stopped"], "0", f["accounts_stopped"] == 0),
        ("Retry-After violations", f["retry_after_violations"], "0", f["retry_after_violations"] == 0),
        ("transitions lost (outside the tenant's Retry-After pauses)", f["transitions"]["lost"], "0",
         f["transitions"]["lost"] == 0),
        ("transitions invented", f["transitions"]["invented"], "0", f["transitions"]["invented"] == 0),
        ("duplicate history rows", dup, "0", dup == 0),
        ("history rows the CSV and the store disagree on", sum(f["history_csv_vs_store"].values()), "0",
         sum(f["history_csv_vs_store"].values()) == 0),
        ("longest presence gap, fault-free (s)", gap if gap is not None else "-", f"<= {2 * interval:g}",
         gap is not None and gap <= 2 * interval),
        ("recovery after faults off (s)", recovery if recovery is not None else "-", "<= 5",
         recovery is not None and recovery <= 5),
        ("secrets in clear", f["leaks"]["found"], "0", f["leaks"]["found"] == 0),
        ("CSV problems", len(f["csvs"]["problems"]), "0", not f["csvs"]["problems"]),
    ]


def report(f: dict[str, Any], json_out: Path | None) -> tuple[str, bool]:
    """The printed report and whether every target passed; the figures go to ``json_out``."""
    t = f["transitions"]
    extra = [
        f"ticks {f['ticks']} (good {f['good_ticks']}); 429s sent {f['throttled']}; "
        f"faults injected {sum(f['faults_injected'].values())} {f['faults_injected']}",
        f"states that fell wholly inside the tenant's presence Retry-After pauses (no client that honours "
        f"Retry-After could read them): {t['unreadable']} of {t['segments_counted']}",
        f"segments counted {t['segments_counted']}; history rows {f['history_rows']}; "
        f"longest gap with faults {f['gap_max_with_faults']}, fault-free {f['gap_max_fault_free']}; "
        f"recovery {f['recovery_s']}",
        f"secrets searched {f['leaks']['secrets']} in {f['leaks']['files']} files and the job's output",
    ]
    if f["retry_after_violations"]:
        extra.append(f"Retry-After violations by budget {f['retry_after_violations_by']}; the last ones:")
        extra += [f"  {v['where']} {'/'.join(v['key'])}: came in {v['after_429_s']}s after the 429, "
                  f"{v['early_by_s']}s early" for v in f["retry_after_violations_recent"][-5:]]
    for acc in ACCOUNTS:
        extra += [f"  {line}" for line in t[acc]["lost_sample"][:5] + t[acc]["invented_sample"][:5]]
        extra += [f"  inside a pause: {line}" for line in t[acc]["unreadable_sample"][:3]]
    return report_figures(f"soak: {f['seconds']:g} s, faults for {f['faults_seconds']:g} s", soak_targets(f), f,
                          extra, json_out)
