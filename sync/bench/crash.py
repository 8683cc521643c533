"""The crash program: ``presence-sync run --interval 1`` started again and again on the same state and out
directories and killed with SIGKILL at seeded random moments, then one clean run; what survived.

- Kill moments: the very first run (empty state directory) is killed during its cold start, as soon as the
  tenant has answered its first directory read (``graph.users``); every fifth run is killed during a
  write-back round, as soon as the tenant sees an Agent-list write of that run (``graph.listitem.update``,
  ``sharepoint.batch``); the others at a random moment 0.3-9 s after the start (start-up included).
  A small latency on directory and SharePoint calls (``directory=100,sites=50`` ms) keeps those phases long
  enough to be hit.
- After each kill: ``PRAGMA integrity_check`` and every CSV parses. At the end: duplicates (store and
  presence_history.csv), lost and invented transitions against the tenant's presence log over the times the job
  was up (each run from its first good tick of an account to its kill; ``sync.bench.truth``).
- New logins: the tenant counts token requests only in total (``identity.token``), not by grant type. MSAL asks
  ``/common/userrealm/{upn}`` before every username/password grant, and every device-code login starts with
  ``/devicecode``; so the password and device-code logins of a run are the growth of ``identity.userrealm`` +
  ``identity.devicecode`` while it ran, and the rest of ``identity.token`` is refresh-token and
  client-credentials grants. A login counts as *new* when the run started with the account's encrypted token
  cache already on disk (``tokens/fabrikam.cache``): that run should have reused it.
- Two instances: while the clean run runs, N more ``run`` commands on the same state directory, each expected
  to exit 2 at once naming the running one.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
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
    cli_env,
    first_good_reads,
    history_csv_rows,
    in_tenant,
    integrity,
    leaks,
    report_figures,
    truth_figures,
    write_config,
)
from .truth import duplicates, load_rows, unmatched

__all__ = ["CrashOptions", "crash_targets", "report", "run_crash"]

WRITES = ("graph.listitem.update", "sharepoint.batch")
LOGINS = ("identity.userrealm", "identity.devicecode")


@dataclass(frozen=True)
class CrashOptions:
    kills: int = 50
    instances: int = 20
    interval: float = 1.0
    writeback: float = 5.0
    speed: float = 60.0
    seed: int = 7
    latency: str = "directory=100,sites=50"


def _say(msg: str) -> None:
    print(msg, flush=True)


def _count(stats: dict[str, Any], names: tuple[str, ...]) -> int:
    return sum(int(stats["requests"].get(n, 0)) for n in names)


def _kill_when(tenant: Tenant, job: Job, names: tuple[str, ...], limit: float) -> str:
    """SIGKILL as soon as the tenant has counted one more request of ``names`` (or after ``limit`` s)."""
    base = _count(tenant.get("/_emulator/stats"), names)
    deadline = time.monotonic() + limit
    hit = "timeout"
    while time.monotonic() < deadline and job.proc.poll() is None:
        if _count(tenant.get("/_emulator/stats"), names) > base:
            hit = "hit"
            break
        time.sleep(0.02)
    job.proc.kill()
    return hit


def _keep_log(work: Path, job: Job, title: str) -> None:
    with (work / "jobs.log").open("a", encoding="utf-8") as f:
        f.write(f"=== {title}: pid {job.proc.pid}\n{job.text}\n")


def _instances(o: CrashOptions, args: list[str], work: Path, holder: int) -> dict[str, Any]:
    codes: list[int] = []
    seconds: list[float] = []
    named = 0
    for _ in range(o.instances):
        t0 = time.monotonic()
        p = subprocess.run([sys.executable, "-m", "sync.cli", *args], cwd=work, env=cli_env(), capture_output=True,
                           text=True, timeout=120)
        seconds.append(time.monotonic() - t0)
        codes.append(p.returncode)
        named += f"another presence-sync (pid {holder}, since " in p.stderr
    return {"tries": o.instances, "exit_2": codes.count(2), "codes": codes, "named_holder": named,
            "seconds_max": round(max(seconds), 2) if seconds else None}


def run_crash(o: CrashOptions, work: Path | None = None) -> dict[str, Any]:
    return in_tenant("presence-crash-", work, lambda tenant, where: _crash(tenant, o, where))


def _crash(tenant: Tenant, o: CrashOptions, work: Path) -> dict[str, Any]:
    state, out = work / "state", work / "out"
    config = write_config(tenant.info, tenant.ca_file, state, work / "config.xml", writeback=o.writeback)
    args = ["run", "--config", str(config), "--state-dir", str(state), "--out", str(out),
            "--interval", f"{o.interval:g}"]
    clock = tenant.start_clock(o.speed)
    tenant.post("/_emulator/faults", {"replace": True, "latency": o.latency})
    rng = random.Random(o.seed)
    db = state / "presence-sync.sqlite"
    runs: list[dict[str, Any]] = []
    integrity_errors: list[str] = []
    csv_problems: list[str] = []
    begin = time.time()
    for k in range(o.kills):
        kind = "cold start" if k == 0 else "write-back" if k % 5 == 2 else "random"
        cache = (state / "tokens" / "fabrikam.cache").exists()
        before = tenant.get("/_emulator/stats")
        tenant.collect_secrets()
        job = Job(args, cwd=work)
        if kind == "cold start":
            hit = _kill_when(tenant, job, ("graph.users",), 60)
        elif kind == "write-back":
            hit = _kill_when(tenant, job, WRITES, 20)
        else:
            time.sleep(rng.uniform(0.3, 9.0))
            job.proc.kill()
            hit = "hit"
        killed = time.time()
        code = job.stop(signal.SIGKILL)
        _keep_log(work, job, f"run {k + 1} ({kind}, killed)")
        after = tenant.get("/_emulator/stats")
        logins = _count(after, LOGINS) - _count(before, LOGINS)
        runs.append({"kind": kind, "hit": hit, "start": job.started, "end": killed, "code": code,
                     "ticks": len(job.cycles()), "cache_at_start": cache, "logins": logins,
                     "token_requests": _count(after, ("identity.token",)) - _count(before, ("identity.token",))})
        check = integrity(db)
        if check not in ("ok", "missing"):
            integrity_errors.append(f"after kill {k + 1}: {check}")
        csv_problems += [f"after kill {k + 1}: {p}" for p in check_csvs(out)["problems"]] if out.exists() else []
        _say(f"kill {k + 1}/{o.kills} ({kind}{'' if hit == 'hit' else ', not reached: killed at the limit'}) "
             f"after {killed - job.started:.1f} s, {runs[-1]['ticks']} tick lines, logins {logins}")
    cache = (state / "tokens" / "fabrikam.cache").exists()
    before = tenant.get("/_emulator/stats")
    final = Job(args, cwd=work)
    started = final.wait_cycles(3, 120)
    two = _instances(o, args, work, final.proc.pid) if started else {"tries": o.instances, "exit_2": 0}
    final.wait_cycles(len(final.cycles("contoso")) + 2, 30)
    end = time.time()
    final_code = final.stop(signal.SIGTERM)
    _keep_log(work, final, "clean run")
    after = tenant.get("/_emulator/stats")
    runs.append({"kind": "clean", "hit": "hit", "start": final.started, "end": end, "code": final_code,
                 "ticks": len(final.cycles()), "cache_at_start": cache,
                 "logins": _count(after, LOGINS) - _count(before, LOGINS),
                 "token_requests": _count(after, ("identity.token",)) - _count(before, ("identity.token",))})
    tenant.collect_secrets()
    rows = load_rows(db)
    up: dict[str, list[tuple[float, float]]] = {a: [] for a in ACCOUNTS}
    for r in runs:
        for acc, first in first_good_reads(db, r["start"], r["end"]).items():
            up[acc].append((first, r["end"]))
    check = integrity(db)
    if check != "ok":
        integrity_errors.append(f"at the end: {check}")
    csv_problems += check_csvs(out)["problems"]
    return {
        "options": o.__dict__, "seconds": round(end - begin, 1), "runs": runs,
        "kinds": {k: sum(1 for r in runs[:-1] if r["kind"] == k) for k in ("cold start", "write-back", "random")},
        "kills_reached": sum(1 for r in runs[:-1] if r["hit"] == "hit"),
        "integrity_errors": integrity_errors, "csv_problems": csv_problems,
        "accounts_stopped": (work / "jobs.log").read_text(encoding="utf-8").count(STOPPED),
        "clean_exit_code": final_code, "traceback": "Traceback" in final.text,
        "duplicates_store": duplicates(rows), "duplicates_csv": duplicates(history_csv_rows(out)),
        "history_csv_vs_store": unmatched(rows, history_csv_rows(out)),
        "history_rows": len(rows),
        "transitions": truth_figures(tenant, clock, rows, up, interval=o.interval, start=begin, end=end),
        "up_seconds": {a: round(sum(hi - lo for lo, hi in up[a]), 1) for a in ACCOUNTS},
        "logins_total": sum(r["logins"] for r in runs),
        "new_logins": sum(r["logins"] for r in runs if r["cache_at_start"]),
        "token_requests": sum(r["token_requests"] for r in runs),
        "two_instances": two,
        "leaks": leaks(tenant.secrets, [state, out, work / "config.xml", work / "jobs.log"], []),
    }


def crash_targets(f: dict[str, Any]) -> list[tuple[str, Any, str, bool]]:
    dup = sum(f["duplicates_store"].values()) + sum(f["duplicates_csv"].values())
    two = f["two_instances"]
    return [
        ("integrity errors", len(f["integrity_errors"]), "0", not f["integrity_errors"]),
        ("CSV problems", len(f["csv_problems"]), "0", not f["csv_problems"]),
        ("duplicate history rows", dup, "0", dup == 0),
        ("history rows the CSV and the store disagree on", sum(f["history_csv_vs_store"].values()), "0",
         sum(f["history_csv_vs_store"].values()) == 0),
        ("transitions lost", f["transitions"]["lost"], "0", f["transitions"]["lost"] == 0),
        ("transitions invented", f["transitions"]["invented"], "0", f["transitions"]["invented"] == 0),
        ("new logins", f["new_logins"], "0", f["new_logins"] == 0),
        ("secrets in clear", f["leaks"]["found"], "0", f["leaks"]["found"] == 0),
        ("accounts stopped by an unexpected error", f["accounts_stopped"], "0", f["accounts_stopped"] == 0),
        ("clean run exit code", f["clean_exit_code"], "0", f["clean_exit_code"] == 0),
        ("second instance exits 2", f"{two['exit_2']}/{two['tries']}", f"{two['tries']}/{two['tries']}",
         two["tries"] > 0 and two["exit_2"] == two["tries"]),
    ]


def report(f: dict[str, Any], json_out: Path | None) -> tuple[str, bool]:
    t = f["transitions"]
    kills = len(f["runs"]) - 1
    extra = [
        f"{kills} kills ({f['kinds']}; {f['kills_reached']} at the aimed moment), then a clean run; {f['seconds']:g} s",
        f"segments counted {t['segments_counted']} over {f['up_seconds']} s up; history rows {f['history_rows']}; "
        f"logins {f['logins_total']} (new {f['new_logins']}), token requests {f['token_requests']}",
        f"secrets searched {f['leaks']['secrets']} in {f['leaks']['files']} files",
        f"second instance: exit codes {sorted(set(f['two_instances'].get('codes', [])))}, named the holder "
        f"{f['two_instances'].get('named_holder')} times, slowest {f['two_instances'].get('seconds_max')} s",
    ]
    for acc in ACCOUNTS:
        extra += [f"  {line}" for line in t[acc]["lost_sample"][:5] + t[acc]["invented_sample"][:5]]
    extra += [f"  {p}" for p in (f["integrity_errors"] + f["csv_problems"])[:10]]
    return report_figures(f"crash: {kills} kills", crash_targets(f), f, extra, json_out)
