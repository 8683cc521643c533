#!/usr/bin/env python3
"""Failover: 3 replicas of `run --interval 1 --store postgresql://...` share 6 tenants of the local tenant;
the holder of some accounts is SIGKILLed, another SIGSTOPped, one replica SIGTERMed, a fourth started and
PostgreSQL restarted (a 10 s outage); PASS/FAIL per target and the figures as JSON.

Needs Debian's postgresql (initdb, pg_ctl). Example: .venv/bin/python scripts/failover.py --seconds 600
Exit 0 when every target passed, 1 when one failed, 2 on bad options.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sync.bench.failover import FailoverOptions, report, run_failover  # noqa: E402
from sync.bench.harness import program  # noqa: E402


def _options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--seconds", type=float, default=600.0, help="length of the run (default 600)")
    ap.add_argument("--replicas", type=int, default=3, help="replicas at the start (default 3)")
    ap.add_argument("--tenants", type=int, default=6, help="tenants, one account each (default 6)")


def _check(args: argparse.Namespace) -> str:
    if args.seconds < 90:
        return "--seconds must be at least 90 (six fault slots and the outage)"
    return "--replicas must be at least 2" if args.replicas < 2 else ""


def _run(args: argparse.Namespace, work: Path | None) -> tuple[str, bool]:
    fig = run_failover(FailoverOptions(seconds=args.seconds, replicas=args.replicas, tenants=args.tenants,
                                       seed=args.seed), work)
    if args.json:
        args.json.write_text(json.dumps(fig, indent=2, default=str) + "\n", encoding="utf-8")
    return report(fig)


if __name__ == "__main__":
    sys.exit(program(__doc__, _options, _check, _run))
