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

from sync.bench.soak import SoakOptions, report, run_soak  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=10.0, help="length of the run (default 10)")
    ap.add_argument("--speed", type=float, default=60.0, help="presence clock speed (default 60)")
    ap.add_argument("--seed", type=int, default=7, help="fault stream seed (default 7)")
    ap.add_argument("--json", type=Path, help="write the figures to this file")
    ap.add_argument("--dir", type=Path, help="keep the state, out and tenant files here (default: a temporary dir)")
    args = ap.parse_args(argv)
    if args.minutes <= 0 or args.speed <= 0:
        ap.error("--minutes and --speed must be positive")
    if args.minutes * 60 * args.speed > 6 * 86400:
        ap.error("--minutes x --speed must stay within 6 days of presence time (the tenant's log window)")
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    figures = run_soak(SoakOptions(minutes=args.minutes, speed=args.speed, seed=args.seed),
                       args.dir.resolve() if args.dir else None)
    text, ok = report(figures, args.json)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
