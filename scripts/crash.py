#!/usr/bin/env python3
"""Crash: SIGKILL the job at random moments (cold start, write-back, anywhere), restart it on the same state and
out directories, then a clean run and a second instance beside it; PASS/FAIL.

Example: .venv/bin/python scripts/crash.py --kills 50 --json crash.json
Exit 0 when every target passed, 1 when one failed, 2 on bad options.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sync.bench.crash import CrashOptions, report, run_crash  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=50, help="SIGKILLs before the clean run (default 50)")
    ap.add_argument("--instances", type=int, default=20, help="second-instance tries (default 20)")
    ap.add_argument("--seed", type=int, default=7, help="seed of the kill moments (default 7)")
    ap.add_argument("--json", type=Path, help="write the figures to this file")
    ap.add_argument("--dir", type=Path, help="keep the state, out and tenant files here (default: a temporary dir)")
    args = ap.parse_args(argv)
    if args.kills < 1 or args.instances < 0:
        ap.error("--kills must be at least 1 and --instances not negative")
    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    figures = run_crash(CrashOptions(kills=args.kills, instances=args.instances, seed=args.seed),
                        args.dir.resolve() if args.dir else None)
    text, ok = report(figures, args.json)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
