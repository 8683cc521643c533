"""A presence chunk that keeps failing marks its agents stale (last known values) and fails only that account's
cycle partially: exit code 1, every output still written, nothing lost."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import e2e_support as sup
import httpx

from sync.emulator.server import EmulatorServer


def test_failing_presence_chunks_mark_agents_stale(tmp_path: Path, emulator: EmulatorServer,
                                                   tenant_info: dict[str, Any], frozen_clock: httpx.Client) -> None:
    ctl = frozen_clock
    args, state, out = sup.contoso_app_run(tmp_path, tenant_info, emulator.tls.ca_cert)
    first = sup.run_cli(args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    _, before = sup.read_csv(out / "presence.csv")
    assert before and all(r["stale"] == "false" for r in before)

    # Every presence call now fails with a 5xx; everything else works.
    ctl.post("/_emulator/faults", json={"error_rate": 1.0, "paths": ["/v1.0/communications"], "seed": 3})
    t0 = time.monotonic()
    second = sup.run_cli(args, cwd=tmp_path, timeout=120)
    elapsed = time.monotonic() - t0
    assert second.returncode == 1, second.stderr
    assert "stale" in second.stderr and "agents=" in second.stderr  # the cycle line still comes
    _, after = sup.read_csv(out / "presence.csv")
    assert len(after) == len(before)
    assert all(r["stale"] == "true" for r in after)
    # Stale rows repeat the last known values, never blanks.
    last = {r["user_id"]: (r["availability"], r["activity"]) for r in before}
    assert all((r["availability"], r["activity"]) == last[r["user_id"]] for r in after)
    stats = ctl.get("/_emulator/stats").json()
    assert stats["faults_injected"], stats
    assert elapsed < 60, f"gave up after {elapsed:.1f} s"
