#!/usr/bin/env python3
"""Replica scale (the benchmark's scenario 4 alone): 10 tenants x 3,000 agents of the local tenant (latency
presence=150:400,other=80, SharePoint quota 6,250 RU/min) read by one `run` process, then by 3 replicas sharing a
PostgreSQL store, each for --seconds; freshness, CPU per agent and the spread, PASS/FAIL and the figures as JSON.

Needs Debian's postgresql (initdb, pg_ctl). Example: .venv/bin/python scripts/replica_scale.py --seconds 60
Exit 0 when every target passed, 1 when one failed, 2 on bad options.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sync.bench.harness import program  # noqa: E402
from sync.bench.replicas import render_replicas, replica_targets, run_replica_scale  # noqa: E402
from sync.bench.tenant import MODEL_LATENCY, start_tenant  # noqa: E402


def _options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--seconds", type=float, default=60.0, help="steady seconds of each side (default 60)")
    ap.add_argument("--replicas", type=int, default=3, help="replicas sharing the store (default 3)")


def _check(args: argparse.Namespace) -> str:
    if args.seconds < 5:
        return "--seconds must be at least 5"
    return "--replicas must be at least 2" if args.replicas < 2 else ""


def _run(args: argparse.Namespace, work: Path | None) -> tuple[str, bool]:
    with tempfile.TemporaryDirectory(prefix="presence-replica-scale-") as tmp_s:
        tmp = work or Path(tmp_s)
        tenants = [(f"t{i:02d}", 6000, 3000) for i in range(1, 11)]
        with start_tenant(tmp / "many", tenants, seed=args.seed, latency=MODEL_LATENCY, latency_fallback=None,
                          extra_args=["--sharepoint-ru-per-minute", "6250"]) as many:
            fig = run_replica_scale(many, tmp / "replicas", replicas=args.replicas, seconds=args.seconds)
    targets = replica_targets(fig)
    if args.json:
        args.json.write_text(json.dumps(fig, indent=2, default=str) + "\n", encoding="utf-8")
    return render_replicas(fig, targets), all(t.passed for t in targets)


if __name__ == "__main__":
    sys.exit(program(__doc__, _options, _check, _run))
