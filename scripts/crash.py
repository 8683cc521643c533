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
from sync.bench.harness import program  # noqa: E402


def _options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--kills", type=int, default=50, help="SIGKILLs before the clean run (default 50)")
    ap.add_argument("--instances", type=int, default=20, help="second-instance tries (default 20)")


def _check(args: argparse.Namespace) -> str:
    return "--kills must be at least 1 and --instances not negative" if args.kills < 1 or args.instances < 0 else ""


def _run(args: argparse.Namespace, work: Path | None) -> tuple[str, bool]:
    return report(run_crash(CrashOptions(kills=args.kills, instances=args.instances, seed=args.seed), work),
                  args.json)


if __name__ == "__main__":
    sys.exit(program(__doc__, _options, _check, _run))
