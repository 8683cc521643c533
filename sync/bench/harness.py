"""What the soak and crash programs share: the local tenant in this process, a config for two accounts, the job
as a real ``presence-sync run`` subprocess whose lines are time-stamped as they arrive, the ground truth, and
the checks on what the job left behind (SQLite integrity, CSVs, secrets in clear).

The two accounts are the ones an operator would configure: ``contoso`` with application permissions (encrypted
client secret; the Agent list through Graph's list route) and ``fabrikam`` delegated with a service account's
encrypted username and password (the Agent list through SharePoint REST).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import signal
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import httpx

from ..demo import app_account_xml
from ..secrets import KeyStore
from .truth import ClockMap, Pair, Row, Segment, compare, parse_time, read_only, segments

__all__ = ["ACCOUNTS", "CYCLE_MARK", "STOPPED", "Job", "Tenant", "check_csvs", "cli_env", "first_good_reads", "good_cycle",
           "ground_truth", "history_csv_rows", "in_tenant", "integrity", "leaks", "program", "render", "report_figures",
           "truth_figures", "write_config"]

ACCOUNTS = ("contoso", "fabrikam")
STOPPED = "stopped by an unexpected error"  # the job's line when one account's loops end on a bug
CYCLE_MARK = ": agents="  # the job's per-tick INFO line: "account X: agents=... presences=..."
CSV_HEADS = {"presence.csv": "account_id", "presence_history.csv": "account_id", "validation.csv": "account_id"}
PRESENCE_START = "2026-03-04T14:30:00Z"  # a Wednesday afternoon in Europe, morning in America: people work


def write_config(info: dict[str, Any], ca_file: Path, state: Path, path: Path, *, writeback: float) -> Path:
    """contoso: application permissions; fabrikam: delegated username/password; secrets encrypted by ``state``."""
    keys = KeyStore(state, env={})
    base = info["base_url"]
    contoso, fabrikam = (next(t for t in info["tenants"] if t["name"] == n) for n in ACCOUNTS)
    app = next(a for a in fabrikam["apps"] if a["kind"] == "public" and a.get("admin_consented", True))
    svc = next(s for s in fabrikam["service_accounts"] if not s.get("mfa_required"))
    delegated = (
        f'      <Account Id="fabrikam" TenantId="{fabrikam["tenant_id"]}" ClientId="{app["client_id"]}"\n'
        f'               Username="{svc["upn"]}" EncryptedPassword="{keys.encrypt(svc["password"])}" '
        f'AuthorityHost="{base}" GraphUrl="{base}">\n'
        f'        <AgentList SiteUrl={quoteattr(fabrikam["site_url"])} List={quoteattr(fabrikam["list_title"])} '
        f'UpnColumn={quoteattr(fabrikam["upn_column"])}/>\n      </Account>')
    xml = ('<?xml version="1.0" encoding="utf-8"?>\n<Configuration>\n  <PresenceProvider>\n'
           f'    <MsGraphPresenceSource enabled="true" CaBundle={quoteattr(str(ca_file.resolve()))}>\n'
           f'    <WriteBack Interval="{writeback:g}"/>\n    <Accounts>\n'
           + app_account_xml(contoso, keys, base) + "\n" + delegated + "\n    </Accounts>\n"
           "    </MsGraphPresenceSource>\n  </PresenceProvider>\n</Configuration>\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(xml, encoding="utf-8")
    return path


class _Expected(logging.Filter):
    """Server-side noise the programs cause on purpose: a killed job leaves requests whose client is gone, and
    the ``reset_rate`` fault ends answers mid-body."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if type(exc).__name__ in ("ClientDisconnect", "ConnectionResetError", "BrokenPipeError"):
            return False
        return "returned without completing response" not in record.getMessage()


class Tenant:
    """The local tenant (``EmulatorServer``) in this process, its control API, and every secret it handed out."""

    def __init__(self, work: Path) -> None:
        from ..emulator.server import EmulatorServer

        logging.getLogger("uvicorn.error").addFilter(_Expected())
        self.server = EmulatorServer(state_dir=work / "tenant").start()
        self.ca_file = self.server.tls.ca_cert
        self.ctl = httpx.Client(base_url=self.server.base_url, timeout=30,
                                verify=ssl.create_default_context(cafile=str(self.ca_file)))
        self.info: dict[str, Any] = self.ctl.get("/_emulator/info").json()
        self.secrets: set[str] = set()
        self.collect_secrets()

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        resp = self.ctl.post(path, json=body or {})
        resp.raise_for_status()
        return resp.json()

    def get(self, path: str, **params: str) -> Any:
        resp = self.ctl.get(path, params=params)
        resp.raise_for_status()
        return resp.json()

    def start_clock(self, speed: float) -> ClockMap:
        """Set the presence clock to a working afternoon and run it ``speed`` x; the mapping back to wall time."""
        self.post("/_emulator/clock", {"set": PRESENCE_START, "speed": speed})
        p0, w0 = self.server.state.clock.now(), time.time()
        return ClockMap(p0, w0, speed)

    def collect_secrets(self) -> None:
        """Client secrets, passwords and every token issued so far (revocation forgets tokens: call it before)."""
        for t in self.info["tenants"]:
            self.secrets.update(a["client_secret"] for a in t["apps"] if a.get("client_secret"))
            self.secrets.update(s["password"] for s in t["service_accounts"])
        tokens = self.server.state.tokens
        self.secrets.update(list(getattr(tokens, "_access", {})))
        self.secrets.update(list(getattr(tokens, "_refresh", {})))

    def close(self) -> None:
        self.ctl.close()
        self.server.stop()


def cli_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRESENCE_SYNC_")}
    env["COLUMNS"] = "400"
    return env


class Job:
    """``presence-sync ARGS`` in a subprocess; every output line kept with the wall time it arrived."""

    def __init__(self, args: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> None:
        self.started = time.time()
        self.proc = subprocess.Popen([sys.executable, "-m", "sync.cli", *args], cwd=cwd, env={**cli_env(), **(env or {})},
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._pump, args=(s,), daemon=True)
                         for s in (self.proc.stdout, self.proc.stderr)]
        for t in self._threads:
            t.start()

    def _pump(self, stream: Any) -> None:
        for line in stream:
            with self._lock:
                self.lines.append((time.time(), line.rstrip("\n")))

    def cycles(self, account: str | None = None) -> list[tuple[float, str]]:
        with self._lock:
            return [(t, ln) for t, ln in self.lines
                    if CYCLE_MARK in ln and (account is None or f"account {account}:" in ln)]

    def wait_cycles(self, n: int, timeout: float, accounts: Sequence[str] = ACCOUNTS) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if all(len(self.cycles(a)) >= n for a in accounts):
                return True
            time.sleep(0.05)
        return all(len(self.cycles(a)) >= n for a in accounts)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait(10)
        for t in self._threads:
            t.join(5)
        return code

    @property
    def text(self) -> str:
        with self._lock:
            return "\n".join(ln for _, ln in self.lines)


def good_cycle(line: str) -> bool:
    """A tick that read presence for its agents and left none stale."""
    if " stale=" in line:
        return False
    try:
        return int(line.split(" presences=")[1].split()[0]) > 0
    except (IndexError, ValueError):
        return False


def first_good_reads(db: Path, since: float, until: float) -> dict[str, float]:
    """Per account, the wall time the first good tick in [since, until] began (from the ``cycles`` table)."""
    out: dict[str, float] = {}
    rows = read_only(db, "SELECT account_id, started_at FROM cycles WHERE presences > 0 AND stale = 0 "
                         "ORDER BY started_at")
    for acc, started in rows:
        at = parse_time(started).timestamp()
        if since <= at <= until and acc not in out:
            out[acc] = at
    return out


def _iso(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def ground_truth(tenant: Tenant, name: str, clock: ClockMap, ids: set[str], start: float,
                 end: float) -> dict[str, list[Segment]]:
    """The tenant's presence of ``ids`` as wall-time segments over [start, end)."""
    lo, hi = clock.to_presence(start), clock.to_presence(end)
    at = tenant.get("/_emulator/presence", tenant=name, at=_iso(lo))["value"]
    initial: dict[str, Pair] = {p["id"]: (p["availability"], p["activity"]) for p in at if p["id"] in ids}
    changes: dict[str, list[tuple[float, Pair]]] = {}
    log = tenant.get("/_emulator/presence-log", tenant=name, since=_iso(lo), until=_iso(hi))["value"]
    for t in log:
        if t["user_id"] in ids:
            changes.setdefault(t["user_id"], []).append(
                (clock.to_wall(parse_time(t["at"])), (t["to"]["availability"], t["to"]["activity"])))
    return {uid: segments(initial[uid], changes.get(uid, []), start, end) for uid in ids if uid in initial}


def truth_figures(tenant: Tenant, clock: ClockMap, rows: Sequence[Row], up: dict[str, list[tuple[float, float]]],
                  *, interval: float, start: float, end: float,
                  pauses: dict[str, list[list[float]]] | None = None) -> dict[str, Any]:
    """Lost and invented transitions per account (see ``sync.bench.truth``); ``pauses`` are each account's
    presence Retry-After windows (the tenant's ``retry_after_pauses``)."""
    out: dict[str, Any] = {}
    for acc in ACCOUNTS:
        mine = [r for r in rows if r.account == acc]
        truth = ground_truth(tenant, acc, clock, {r.user_id for r in mine}, start, end)
        out[acc] = compare(truth, mine, up.get(acc, []), interval=interval, label=f"{acc} ",
                           pauses=(pauses or {}).get(acc, ())).to_json()
    out["lost"] = sum(out[a]["lost"] for a in ACCOUNTS)
    out["unreadable"] = sum(out[a]["unreadable"] for a in ACCOUNTS)
    out["invented"] = sum(out[a]["invented"] for a in ACCOUNTS)
    out["segments_counted"] = sum(out[a]["segments_counted"] for a in ACCOUNTS)
    return out


def integrity(db: Path) -> str:
    """``PRAGMA integrity_check`` of the store ("ok", "missing" or the problems)."""
    if not db.exists():
        return "missing"
    conn = sqlite3.connect(str(db), timeout=30)
    try:
        return "; ".join(r[0] for r in conn.execute("PRAGMA integrity_check").fetchall())
    finally:
        conn.close()


def check_csvs(out: Path) -> dict[str, Any]:
    """Every CSV in ``out`` parses and starts with its header; rows per file; the problems."""
    problems: list[str] = []
    rows: dict[str, int] = {}
    for f in sorted(out.glob("*.csv")):
        try:
            with f.open(newline="", encoding="utf-8") as fh:
                data = list(csv.reader(fh))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            problems.append(f"{f.name}: {exc}")
            continue
        head = CSV_HEADS.get(f.name)
        if head and (not data or data[0][:1] != [head]):
            problems.append(f"{f.name}: no header")
        if data and any(len(r) != len(data[0]) for r in data[1:]):
            problems.append(f"{f.name}: a row with a different number of cells")
        rows[f.name] = max(0, len(data) - 1)
    return {"files": len(rows), "rows": rows, "problems": problems}


def history_csv_rows(out: Path) -> list[Row]:
    """presence_history.csv as rows (for its own duplicate count)."""
    path = out / "presence_history.csv"
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as fh:
        return [Row(r["account_id"], r["user_id"], (r["from_availability"], r["from_activity"]),
                    (r["to_availability"], r["to_activity"]), parse_time(r["changed_at_utc"]).timestamp())
                for r in csv.DictReader(fh)]


def leaks(secrets: Iterable[str], dirs: Iterable[Path], texts: Iterable[str]) -> dict[str, Any]:
    """Where any secret appears in clear: files scanned, secrets searched, findings (never the secret itself)."""
    needles = [(s, s.encode()) for s in secrets if len(s) >= 8]
    found: list[str] = []
    files = [f for d in dirs if d.exists() for f in sorted(d.rglob("*")) if f.is_file()]
    for f in files:
        data = f.read_bytes()
        found += [f"{f}: {s[:4]}..." for s, b in needles if b in data]
    for n, text in enumerate(texts):
        found += [f"job output #{n}: {s[:4]}..." for s, _ in needles if s in text]
    return {"secrets": len(needles), "files": len(files), "found": len(found), "where": found[:20]}


def render(title: str, targets: Sequence[tuple[str, Any, str, bool]]) -> str:
    """A plain table: figure, value, target, PASS/FAIL."""
    width = max(len(t[0]) for t in targets)
    lines = [title, f"{'figure':<{width}}  {'value':>12}  {'target':<14}  result"]
    for name, value, target, ok in targets:
        shown = f"{value:.2f}" if isinstance(value, float) else str(value)
        lines.append(f"{name:<{width}}  {shown:>12}  {target:<14}  {'PASS' if ok else 'FAIL'}")
    passed = sum(1 for t in targets if t[3])
    lines.append(f"verdict: {'PASS' if passed == len(targets) else 'FAIL'} ({passed} of {len(targets)} passed)")
    return "\n".join(lines)


Targets = Sequence[tuple[str, Any, str, bool]]


def in_tenant(prefix: str, work: Path | None, run: Callable[[Tenant, Path], dict[str, Any]]) -> dict[str, Any]:
    """``run(tenant, work)`` with the local tenant up in this process, in ``work`` (default: a temporary dir)."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        where = work or Path(tmp)
        tenant = Tenant(where)
        try:
            return run(tenant, where)
        finally:
            tenant.close()


def report_figures(title: str, targets: Targets, figures: dict[str, Any], extra: Sequence[str],
           json_out: Path | None) -> tuple[str, bool]:
    """The printed table and notes, and whether every target passed; figures and verdicts go to ``json_out``."""
    ok = all(t[3] for t in targets)
    if json_out is not None:
        json_out.write_text(json.dumps({**figures, "targets": [
            {"figure": n, "value": v, "target": g, "pass": p} for n, v, g, p in targets], "pass": ok},
            indent=2, default=str), encoding="utf-8")
    return render(title, targets) + "\n" + "\n".join(extra), ok


def program(doc: str | None, add: Callable[[argparse.ArgumentParser], None],
            check: Callable[[argparse.Namespace], str],
            run: Callable[[argparse.Namespace, Path | None], tuple[str, bool]],
            argv: list[str] | None = None) -> int:
    """A soak or crash script: its own options (``add``), then --seed, --json and --dir; ``check`` names what
    is wrong with them ("" when nothing), ``run`` gets them and the work dir and returns the report. Exit 0 when
    every target passed, 1 when one failed, 2 on bad options."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add(ap)
    ap.add_argument("--seed", type=int, default=7, help="seed of the faults or the kill moments (default 7)")
    ap.add_argument("--json", type=Path, help="write the figures to this file")
    ap.add_argument("--dir", type=Path, help="keep the state, out and tenant files here (default: a temporary dir)")
    args = ap.parse_args(argv)
    problem = check(args)
    if problem:
        ap.error(problem)
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    text, ok = run(args, args.dir.resolve() if args.dir else None)
    print(text)
    return 0 if ok else 1
