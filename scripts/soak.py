#!/usr/bin/env python3
"""Soak: the job for two accounts against the local tenant with every fault switch on, then off; PASS/FAIL.

Example: .venv/bin/python scripts/soak.py --minutes 10 --json soak.json
Exit 0 when every target passed, 1 when one failed, 2 on bad options.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sync.bench.harness import program  # noqa: E402
from sync.bench.soak import SoakOptions, report, run_soak  # noqa: E402


def _options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the run (default 10)")
    ap.add_argument("--speed", type=float, default=60.0, help="presence clock speed (default 60)")


def _check(args: argparse.Namespace) -> str:
    if args.minutes <= 0 or args.speed <= 0:
        return "--minutes and --speed must be positive"
    if args.minutes * 60 * args.speed > 6 * 86400:
        return "--minutes x --speed must stay within 6 days of presence time (the tenant's log window)"
    return ""


def _run(args: argparse.Namespace, work: Path | None) -> tuple[str, bool]:
    return report(run_soak(SoakOptions(minutes=args.minutes, speed=args.speed, seed=args.seed), work), args.json)


if __name__ == "__main__":
    sys.exit(program(__doc__, _options, _check, _run))
