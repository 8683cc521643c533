"""The crash program, short: 6 SIGKILLs (cold start and write-back among them), a clean run, 5 second instances."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_six_kills_and_five_second_instances_meet_every_target(tmp_path: Path) -> None:
    out = tmp_path / "crash.json"
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "crash.py"), "--kills", "6", "--instances", "5",
                           "--json", str(out), "--dir", str(tmp_path / "work")],
                          capture_output=True, text=True, timeout=240)
    figures = json.loads(out.read_text(encoding="utf-8"))
    failed = [t for t in figures["targets"] if not t["pass"]]
    assert not failed, f"{failed}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    assert proc.returncode == 0 and "verdict: PASS" in proc.stdout, proc.stdout[-3000:]
    assert figures["kinds"] == {"cold start": 1, "write-back": 1, "random": 4}
    assert figures["two_instances"] == {**figures["two_instances"], "tries": 5, "exit_2": 5, "named_holder": 5}
    assert figures["logins_total"] >= 1  # the first run signed in; every later one reused the token cache
    assert figures["transitions"]["segments_counted"] >= 20
