"""The failover program: replicas of ``presence-sync run --interval 1 --store postgresql://...`` sharing the
accounts of a local tenant, their holders killed, paused and stopped at seeded moments; what the others did.

Set-up: a real PostgreSQL server in a temporary directory (``TemporaryPostgres``), the local tenant in its own
process with N generated tenants (``start_tenant``), one config.xml with an application account per tenant and
one key file for every replica, and 3 replicas. The faults, at seeded moments inside their own slots of the run:
SIGKILL the holder of a random account; SIGSTOP the holder of another for 2 TTLs, then SIGCONT; SIGTERM a
replica; start a fourth; restart PostgreSQL with a 10 s outage.

What is measured, from the replicas' own log lines (each line stamped with the wall time it arrived; a tick's
presence read began its duration before its line):
- takeover: from the SIGKILL / SIGSTOP to the first presence read of each of the victim's accounts on another
  replica; handover: the same from a SIGTERM;
- split brain: presence ticks of one account on two replicas less than half an interval apart (a replica that
  resumes from SIGSTOP must not tick an account it no longer holds), by the replicas' logs and by the tenant's
  request log (a call of one tenant made with one replica's access token between two calls of another replica's
  less than 2 intervals apart: two readers at once, where a handover is one change of token);
- stale writes: the store writes refused with LeaseLost (the paused replica's, on purpose) and any accepted;
- balance: held accounts per live replica, max - min, 3 renewals after each change;
- the outage: from PostgreSQL being back to a presence tick of every account (the run lasts until each
  account ticked again or 30 s passed, past ``seconds`` if need be);
- crashes: replicas that exited non-zero or printed a traceback;
- write-back: Agent-list writes that set every field to the value it had (the tenant counts them: a change
  written twice), at most the batches in flight when a holder was killed, paused or cut off (SharePoint took
  them, the store never heard), and each holder's Agent-list lag p95 (from its write-back lines), against 2
  write-back intervals;
- history: the replicas share one OutDir (a shared volume): duplicate transitions in the store and in the
  whole-folder presence_history.csv (a user's two consecutive rows to one state, or two identical rows), and the
  rows the store and the CSV do not have in common.
"""

from __future__ import annotations

import random
import re
import signal
import statistics
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .failover_history import history_figures, transitions
from .harness import Job
from .job import bench_config
from .postgres import TemporaryPostgres
from .tenant import start_tenant
from .truth import ClockMap, parse_time

__all__ = ["FailoverOptions", "held_accounts", "in_flight_bound", "report", "run_failover"]

_TOOK = re.compile(r"replica (\S+): took account (\S+) \(lease token (\d+)")
WRITEBACK_INTERVAL = 5.0  # seconds between the replicas' Agent-list write-back rounds
_TICK = re.compile(r"account (\S+): agents=\d+ .*presences=(\d+) .*duration=([\d.]+)s")


@dataclass(frozen=True)
class FailoverOptions:
    seconds: float = 600.0
    replicas: int = 3
    tenants: int = 6
    users: int = 1200
    agents: int = 300
    outage: float = 10.0
    seed: int = 7
    ttl: float = 6.0
    renew: float = 2.0


class _Replica:
    def __init__(self, name: str, job: Job) -> None:
        self.name, self.job = name, job
        self.stopped_at: float | None = None

    def held(self) -> set[str]:
        return held_accounts(self.job)

    def ticks(self) -> list[tuple[float, str]]:
        """(when the tick's presence read began, account): the line's arrival less the tick's duration."""
        return [(t - float(m.group(3)), m.group(1)) for t, ln in self.job.lines
                if (m := _TICK.search(ln)) and int(m.group(2)) > 0]


def held_accounts(job: Job) -> set[str]:
    """The accounts a replica holds by its log: taken, less handed over, lost or stopped with the database."""
    mine: set[str] = set()
    for _, ln in list(job.lines):
        if (m := _TOOK.search(ln)) is not None:
            mine.add(m.group(2))
        elif "handed account " in ln or "lost account " in ln:
            mine.discard(ln.split(" account ", 1)[1].split()[0])
        elif "stopping its" in ln and "until the database answers" in ln:
            mine.clear()
    return mine


def _first_tick_elsewhere(replicas: list[_Replica], victim: _Replica, account: str, since: float) -> float | None:
    times = [t for r in replicas if r is not victim for t, acc in r.ticks() if acc == account and t >= since]
    return min(times) - since if times else None


def run_failover(opts: FailoverOptions, work: Path | None = None) -> dict[str, Any]:
    import tempfile

    rng = random.Random(opts.seed)
    with tempfile.TemporaryDirectory(prefix="presence-failover-") as tmp_s:
        tmp = work or Path(tmp_s)
        names = [f"t{i:02d}" for i in range(1, opts.tenants + 1)]
        with TemporaryPostgres() as pg, start_tenant(tmp / "tenant", [(n, opts.users, opts.agents) for n in names],
                                                     seed=opts.seed) as tenant:
            url = pg.create_database("failover")
            keys = tmp / "keys"
            config = bench_config(tenant.info, keys, tenant.ca_file, tmp / "config.xml", quota=6250,
                                  writeback_interval=WRITEBACK_INTERVAL)
            xml = config.read_text(encoding="utf-8").replace(
                "<Accounts>", f'<Store LeaseTtl="{opts.ttl:g}" LeaseRenew="{opts.renew:g}"/>\n    <Accounts>', 1)
            config.write_text(xml, encoding="utf-8")
            env = {"PRESENCE_SYNC_KEY_FILE": str(keys / "secret.key")}

            def start(name: str) -> _Replica:
                return _Replica(name, Job(["run", "--config", str(config), "--state-dir", str(tmp / f"state-{name}"),
                                           "--out", str(tmp / "out"), "--interval", "1", "--store", url],
                                          tmp, env=env))

            before = time.time()
            now = tenant.control("GET", "/_emulator/clock")
            clock = ClockMap(parse_time(now["now"]), (before + time.time()) / 2, float(now["speed"]) or 1.0)
            reps = [start(f"r{i}") for i in range(1, opts.replicas + 1)]
            t0 = time.time()
            events: list[dict[str, Any]] = []
            balance: list[int] = []
            slot = opts.seconds / 6

            def at(k: float) -> None:
                target = t0 + slot * k + rng.uniform(0, slot * 0.3)
                while time.time() < target:
                    time.sleep(0.1)

            def live() -> list[_Replica]:
                return [r for r in reps if r.stopped_at is None and r.job.proc.poll() is None]

            def holder_of_any() -> tuple[_Replica, set[str]]:
                options = [(r, r.held()) for r in live() if r.held()]
                r, held = rng.choice(options)
                return r, held

            def check_balance() -> None:
                time.sleep(3 * opts.renew + 1)
                counts = [len(r.held()) for r in live()]
                balance.append(max(counts) - min(counts) if counts else 0)

            at(1)
            victim, held = holder_of_any()
            victim.job.proc.send_signal(signal.SIGKILL)
            victim.stopped_at = time.time()
            events.append({"kind": "SIGKILL", "replica": victim.name, "at": victim.stopped_at, "accounts": sorted(held)})
            check_balance()

            at(2)
            paused, held = holder_of_any()
            paused.job.proc.send_signal(signal.SIGSTOP)
            stop_at = time.time()
            events.append({"kind": "SIGSTOP", "replica": paused.name, "at": stop_at, "accounts": sorted(held)})
            time.sleep(2 * opts.ttl)
            probe = _stale_write(url, paused, sorted(held))  # the paused replica's token, after the takeover
            paused.job.proc.send_signal(signal.SIGCONT)
            check_balance()

            at(3)
            leaving, held = holder_of_any()
            term_at = time.time()
            code = leaving.job.stop(signal.SIGTERM, timeout=30)
            leaving.stopped_at = term_at
            events.append({"kind": "SIGTERM", "replica": leaving.name, "at": term_at, "accounts": sorted(held),
                           "exit_code": code})
            check_balance()

            at(4)
            reps.append(start(f"r{len(reps) + 1}"))
            events.append({"kind": "start", "replica": reps[-1].name, "at": time.time(), "accounts": []})
            check_balance()

            at(5)
            pg.stop("immediate")
            down = time.time()
            time.sleep(opts.outage)
            pg.start()
            back = time.time()
            events.append({"kind": "postgres outage", "at": down, "back": back, "accounts": names})
            check_balance()
            settle = back + 30.0  # the outage is the last fault: give every account time to come back, then end
            while time.time() < settle and not all(
                    any(t >= back and a == acc for r in live() for t, a in r.ticks()) for acc in names):
                time.sleep(0.5)
            while time.time() < t0 + opts.seconds:
                time.sleep(0.2)
            codes = {r.name: r.job.stop(signal.SIGTERM, timeout=30) for r in live()}
            for r in reps:  # each replica's whole log, each line after the wall time it arrived, for a reader
                (tmp / f"{r.name}.log").write_text("".join(f"{t:.3f} {ln}\n" for t, ln in r.job.lines),
                                                   encoding="utf-8")
            history, stored = history_figures(url, tmp / "out" / "presence_history.csv")
            history["transitions"] = transitions(tenant, clock, stored, {r.name: r.ticks() for r in reps}, names,
                                                  t0, time.time())
            writes = [tenant.control("GET", f"/_emulator/lists/writes?tenant={n}") for n in names]
            # The tenant's own log: calls with one replica's token between two of another's, within 2 intervals.
            overlaps = {n: tenant.control("GET", f"/_emulator/presence-reads?tenant={n}&within=2")["interleaved"]
                        for n in names}
        return {**_figures(opts, reps, events, balance, codes, names), "history": history, "stale_probe": probe,
                "writeback": _writeback(reps, writes, opts), "tenant_overlaps": overlaps}


_LAG = re.compile(r"account (\S+): write-back: .* lag p50=([\d.]+)s p95=([\d.]+)s")


def _writeback(reps: list[_Replica], writes: list[dict[str, Any]], opts: FailoverOptions) -> dict[str, Any]:
    """Agent-list writes that changed nothing (a value written twice: by two replicas, or again because the
    write that SharePoint took was never recorded: its replica was killed, paused or cut off from the database
    in between), and the lag p95 of each holder's last write-back round per account (wall seconds from a
    presence change to its value in the list)."""
    last: dict[tuple[str, str], float] = {}
    for r in reps:
        for _, ln in r.job.lines:
            if (m := _LAG.search(ln)) is not None:
                last[(r.name, m.group(1))] = float(m.group(3))
    return {"items_written": sum(int(w["total"]) for w in writes),
            "unchanged_writes": sum(int(w["unchanged_total"]) for w in writes),
            "unchanged_by_tenant": {w["tenant"]: int(w["unchanged_total"]) for w in writes},
            "lag_p95_max": max(last.values()) if last else None, "interval": WRITEBACK_INTERVAL}


def _stale_write(url: str, paused: _Replica, accounts: list[str]) -> dict[str, Any]:
    """A store write on purpose with the paused replica's id and last token of one of its accounts, after another
    replica took the account over (no deadline of its own: only the database judges). It must be refused."""
    from sync.errors import LeaseLost
    from sync.models import CycleResult
    from sync.store import Store

    took = [m for _, ln in paused.job.lines if (m := _TOOK.search(ln)) is not None and m.group(2) in accounts]
    if not took:
        return {"tried": False}
    last = took[-1]
    store = Store(url)
    try:
        store.fence(last.group(2), last.group(1), int(last.group(3)))
        store.record_cycle(CycleResult(last.group(2), datetime.now(UTC), error="failover probe: a stale token"))
        return {"tried": True, "account": last.group(2), "token": int(last.group(3)), "accepted": True}
    except LeaseLost:
        return {"tried": True, "account": last.group(2), "token": int(last.group(3)), "accepted": False}
    finally:
        store.close()




def _figures(opts: FailoverOptions, reps: list[_Replica], events: list[dict[str, Any]], balance: list[int],
             codes: dict[str, int], names: list[str]) -> dict[str, Any]:
    by_name = {r.name: r for r in reps}
    takeovers: list[float | None] = []
    handovers: list[float | None] = []
    outage_back: list[float | None] = []
    for ev in events:
        if ev["kind"] in ("SIGKILL", "SIGSTOP", "SIGTERM"):
            victim = by_name[ev["replica"]]
            waits = [_first_tick_elsewhere(reps, victim, acc, ev["at"]) for acc in ev["accounts"]]
            (handovers if ev["kind"] == "SIGTERM" else takeovers).extend(waits)
        elif ev["kind"] == "postgres outage":
            for acc in names:
                times = [t for r in reps for t, a in r.ticks() if a == acc and t >= ev["back"]]
                outage_back.append(min(times) - ev["back"] if times else None)
    split = 0
    for acc in names:
        ticks = sorted((t, r.name) for r in reps for t, a in r.ticks() if a == acc)
        split += sum(1 for (t1, r1), (t2, r2) in zip(ticks, ticks[1:], strict=False) if r1 != r2 and t2 - t1 < 0.5)
    text = "\n".join(r.job.text for r in reps)
    refused = text.count("no longer holds account") + text.count("may have passed to another replica")
    crashes = sum(1 for r in reps if "Traceback" in r.job.text) + sum(1 for c in codes.values() if c != 0)

    def stat(xs: list[float | None]) -> dict[str, Any]:
        got = [x for x in xs if x is not None]
        return {"n": len(xs), "missing": len(xs) - len(got), "p50": statistics.median(got) if got else None,
                "max": max(got) if got else None}

    return {"options": opts.__dict__, "events": [{k: v for k, v in e.items()} for e in events],
            "takeover": stat(takeovers), "handover": stat(handovers), "after_outage": stat(outage_back),
            "split_brain_ticks": split, "stale_writes_refused": refused, "balance_spread": balance,
            "crashes": crashes, "exit_codes": codes}


def in_flight_bound(fig: dict[str, Any]) -> int:
    """The most Agent-list writes SharePoint may have taken without the store recording them: one write-back
    batch (GROUP x parallel items) per account whose holder was killed, paused or cut off from the database."""
    from sync.loops.writeback import GROUP

    hit = sum(len(e["accounts"]) for e in fig["events"] if e["kind"] in ("SIGKILL", "SIGSTOP", "postgres outage"))
    return GROUP * 4 * hit


def report(fig: dict[str, Any]) -> tuple[str, bool]:
    """The PASS/FAIL table of the targets, and whether all passed."""
    def ok_max(s: dict[str, Any], limit: float) -> bool:
        return s["missing"] == 0 and s["max"] is not None and s["max"] <= limit

    def sec(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    rows = [
        ("takeover after SIGKILL/SIGSTOP: p50 / max", f"{sec(fig['takeover']['p50'])} / {sec(fig['takeover']['max'])} s",
         "<= 10 s", ok_max(fig["takeover"], 10.0)),
        ("handover after SIGTERM: max", f"{sec(fig['handover']['max'])} s", "<= 2 s", ok_max(fig["handover"], 2.0)),
        ("presence again after the PostgreSQL outage: max", f"{sec(fig['after_outage']['max'])} s", "<= 10 s",
         ok_max(fig["after_outage"], 10.0)),
        ("ticks of one account on two replicas", str(fig["split_brain_ticks"]), "0", fig["split_brain_ticks"] == 0),
        ("presence calls of one replica amid another's (2 s), by the tenant's log",
         str(sum((fig.get("tenant_overlaps") or {}).values())) if fig.get("tenant_overlaps") is not None else "-",
         "0", fig.get("tenant_overlaps") is not None and sum(fig["tenant_overlaps"].values()) == 0),
        ("held accounts, max - min, 3 renewals after a change", str(fig["balance_spread"]), "<= 1 each",
         all(b <= 1 for b in fig["balance_spread"])),
        ("replicas crashed (non-zero exit or traceback)", str(fig["crashes"]), "0", fig["crashes"] == 0),
    ]
    probe = fig.get("stale_probe") or {}
    rows.append(("a store write with the paused replica's stale token, on purpose", "accepted" if probe.get(
        "accepted") else ("refused" if probe.get("tried") else "not tried"), "refused",
        probe.get("tried") is True and probe.get("accepted") is False))
    wb = fig.get("writeback")
    if wb is not None:
        bound = in_flight_bound(fig)
        rows.append((f"Agent-list writes that changed nothing (of {wb['items_written']})", str(wb["unchanged_writes"]),
                     f"<= {bound} (in flight at a fault)", wb["unchanged_writes"] <= bound))
        lag = wb["lag_p95_max"]
        rows.append(("Agent-list lag p95, slowest holder", f"{sec(lag)} s", f"<= {2 * wb['interval']:g} s",
                     lag is not None and lag <= 2 * wb["interval"]))
    h = fig.get("history")
    if h is not None:
        dup = {k: h["store_duplicates"][k] + h["csv_duplicates"][k] for k in ("same_state", "identical")}
        rows.append(("duplicate transitions, store + presence_history.csv (same state / identical)",
                     f"{dup['same_state']} / {dup['identical']}", "0 / 0", dup == {"same_state": 0, "identical": 0}))
        tr = h.get("transitions") or {}
        rows.append((f"transitions lost / invented outside takeover windows (of {tr.get('segments_counted', 0)} "
                     "states, tenant's log)", f"{tr.get('lost', '-')} / {tr.get('invented', '-')}", "0 / 0",
                     tr.get("lost") == 0 and tr.get("invented") == 0))
        un = h["unmatched"]
        rows.append((f"history rows not in both store ({h['store_rows']}) and CSV ({h['csv_rows']})",
                     f"{un['missing_from_csv']} / {un['not_in_store']}", "0 / 0",
                     un == {"missing_from_csv": 0, "not_in_store": 0}))
    lines = ["| target | measured | limit | result |", "|---|---|---|---|"]
    lines += [f"| {name} | {value} | {limit} | {'PASS' if ok else 'FAIL'} |" for name, value, limit, ok in rows]
    lines.append(f"stale store writes refused (LeaseLost): {fig['stale_writes_refused']}")
    return "\n".join(lines), all(ok for *_, ok in rows)
