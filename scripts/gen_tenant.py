#!/usr/bin/env python3
"""Write a large synthetic tenant (fixture format) for benchmarks.

Example: python scripts/gen_tenant.py --users 100000 --agents 30000 --seed 7 --name bigcorp \
             --out fixtures/generated/bigcorp.json
Start the tenant on it with the emulator's fixtures option pointing at the output's directory.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sync.emulator.model.generate import generate_tenant  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=100_000, help="directory users (default 100000)")
    ap.add_argument("--agents", type=int, default=30_000, help="Agent-list items (default 30000)")
    ap.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    ap.add_argument("--name", default="bigcorp", help="tenant short name, also the domain stem (default bigcorp)")
    ap.add_argument("--out", type=Path, help="output file (default fixtures/generated/<name>.json)")
    args = ap.parse_args(argv)
    if args.agents > args.users:
        ap.error("--agents must not exceed --users")
    out: Path = args.out or ROOT / "fixtures" / "generated" / f"{args.name}.json"
    t0 = time.perf_counter()
    doc = generate_tenant(args.users, args.agents, args.seed, args.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    took = time.perf_counter() - t0
    size = out.stat().st_size
    print(f"{out}: tenant {doc['name']} ({doc['tenantId']}), {len(doc['users'])} users, "
          f"{args.agents} agents, {size / 1e6:.1f} MB in {took:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
