#!/usr/bin/env python3
"""Benchmark: CPU-seconds per cycle of the job for a large tenant, against the local tenant in another process.

The job runs in this process (so its CPU time is what we measure: ``getrusage`` over all its threads); the local
tenant runs in a child process (its CPU is not ours). After one warm-up cycle (roster, full directory read,
first presence), every cycle is measured. The baseline, measured in the same run against the same tenant, is
the floor of the work: the same presence calls with bare httpx (650 ids per call, 8 in flight) and ``json``
parsing, nothing else. The ratio job/baseline is what to compare across runs; absolute figures drift on a
shared machine.

Example: python scripts/bench_cycle.py --users 100000 --agents 30000 --cycles 15 --interval 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from sync.config import load_settings  # noqa: E402
from sync.demo import write_demo_config  # noqa: E402
from sync.emulator.generate import generate_tenant  # noqa: E402
from sync.job import run_job  # noqa: E402
from sync.models import CycleResult  # noqa: E402
from sync.secrets import KeyStore  # noqa: E402


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def start_tenant(fixtures: Path, state: Path) -> tuple[subprocess.Popen[str], str, Path]:
    proc = subprocess.Popen([sys.executable, "-m", "sync.emulator", "--fixtures", str(fixtures), "--port", "0",
                             "--state-dir", str(state), "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    assert proc.stdout is not None
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        line = line.strip()
        if line.startswith("{") and "base_url" in line:
            doc = json.loads(line)
            return proc, doc["base_url"], Path(doc["ca_file"])
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise SystemExit("the local tenant did not start")


async def baseline(base: str, ca: Path, info: dict[str, Any], ids: list[str], rounds: int,
                   interval: float) -> list[float]:
    """CPU per round of the bare presence calls: the floor of what a cycle must do."""
    t = info["tenants"][0]
    app = next(a for a in t["apps"] if a["kind"] == "confidential" and a.get("client_secret"))
    ctx = ssl.create_default_context(cafile=str(ca))
    async with httpx.AsyncClient(verify=ctx, http2=True, timeout=60,
                                 limits=httpx.Limits(max_connections=16, max_keepalive_connections=16)) as c:
        tok = (await c.post(f"{base}/{t['tenant_id']}/oauth2/v2.0/token", data={
            "grant_type": "client_credentials", "client_id": app["client_id"],
            "client_secret": app["client_secret"], "scope": f"{base}/.default"})).json()["access_token"]
        headers = {"Authorization": f"Bearer {tok}", "Content-Type": "application/json"}
        chunks = [ids[i:i + 650] for i in range(0, len(ids), 650)]
        gate = asyncio.Semaphore(8)

        async def one(chunk: list[str]) -> int:
            async with gate:
                r = await c.post(f"{base}/v1.0/communications/getPresencesByUserId", headers=headers,
                                 content=json.dumps({"ids": chunk}).encode())
                return len(json.loads(r.content)["value"])
        out = []
        for _ in range(rounds):
            t0, c0 = time.monotonic(), cpu()
            await asyncio.gather(*(one(ch) for ch in chunks))
            out.append(cpu() - c0)
            await asyncio.sleep(max(0.0, interval - (time.monotonic() - t0)))
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--agents", type=int, default=30_000)
    ap.add_argument("--cycles", type=int, default=15, help="measured cycles after the warm-up (default 15)")
    ap.add_argument("--interval", type=float, default=1.0, help="seconds between cycles (default 1)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--target", type=float, default=0.15, help="CPU-seconds per cycle to stay under (0.15)")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-cycle-") as tmp_s:
        tmp = Path(tmp_s)
        (tmp / "fixtures").mkdir()
        t0 = time.perf_counter()
        doc = generate_tenant(args.users, args.agents, args.seed, "bigcorp")
        (tmp / "fixtures" / "bigcorp.json").write_text(json.dumps(doc), encoding="utf-8")
        print(f"tenant: {args.users} users, {args.agents} agents, generated in {time.perf_counter() - t0:.1f} s")
        proc, base, ca = start_tenant(tmp / "fixtures", tmp / "emulator")
        try:
            ctx = ssl.create_default_context(cafile=str(ca))
            info = httpx.get(f"{base}/_emulator/info", verify=ctx, timeout=30).json()
            state = tmp / "state"
            config = write_demo_config(info, KeyStore(state), ca, tmp / "config.xml")
            settings, _ = load_settings(config, {"state_dir": state, "out_dir": tmp / "out",
                                                 "interval": args.interval}, env={})
            marks: list[tuple[float, float, list[CycleResult]]] = []
            last = [cpu(), time.monotonic()]

            def on_cycle(n: int, results: list[CycleResult]) -> None:
                now_cpu, now = cpu(), time.monotonic()
                marks.append((now_cpu - last[0], now - last[1], results))
                last[0], last[1] = now_cpu, now

            report = asyncio.run(run_job(settings, max_cycles=args.cycles + 1, install_signals=False,
                                         on_cycle=on_cycle))
            warm, steady = marks[0], marks[1:]
            ids = []
            import csv
            with (tmp / "out" / "presence.csv").open(newline="", encoding="utf-8") as f:
                ids = [r["user_id"] for r in csv.DictReader(f)]
            base_cpu = asyncio.run(baseline(base, ca, info, ids, args.cycles, args.interval))
            stats = httpx.get(f"{base}/_emulator/stats", verify=ctx, timeout=30).json()
        finally:
            proc.terminate()
            proc.wait(timeout=15)

    job = [m[0] for m in steady]
    res = [r for m in steady for r in m[2]]
    med_job, med_base = statistics.median(job), statistics.median(base_cpu)
    p95 = sorted(job)[max(0, int(round(0.95 * len(job))) - 1)]
    r0 = warm[2][0] if warm[2] else None
    print(f"exit code {report.exit_code}; agents {r0.agents if r0 else '?'}, collected "
          f"{r0.presences if r0 else '?'}; warm-up cycle {warm[0]:.2f} CPU-s (roster, directory, first presence)")
    print(f"job      CPU-s/cycle: median {med_job:.3f}  p95 {p95:.3f}  max {max(job):.3f}  (target {args.target})")
    print(f"baseline CPU-s/cycle: median {med_base:.3f}  (bare httpx + json for the same presence calls)")
    print(f"ratio job/baseline: {med_job / med_base:.2f}")
    print(f"per cycle: requests {statistics.median(r.requests for r in res):.0f}, changes "
          f"{statistics.median(r.changes for r in res):.0f}, wall {statistics.median(r.duration_s for r in res):.3f} s;"
          f" tenant: 429s {stats['throttled']}, presence_window_peak {stats['presence_window_peak']}")
    print("verdict:", "within target" if p95 <= args.target else "OVER target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
