"""Never silent: an account that reads no presence says so, once a minute, with what fails and what to do, and
shows it on /readyz and /metrics (the stall watch's timing is tested with plain values in tests/sync/test_stall.py).
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import e2e_support as sup
import httpx
from metrics_support import free_port, samples, value, wait_http

from sync.emulator.server import EmulatorServer


def test_an_account_that_reads_no_presence_says_why_and_is_not_ready(
        tmp_path: Path, emulator: EmulatorServer, tenant_info: dict[str, Any], ctl: httpx.Client) -> None:
    """The application account's list route is refused (no fallback for a secret account): within 3 intervals the
    CLI's ERROR line names the account and the refusal, and gives the refusal's own fix as what to do; /readyz
    says stalled; the gauge is 1."""
    state, out = tmp_path / "state", tmp_path / "out"
    config = sup.write_config(tmp_path / "config.xml", [
        sup.Account("contoso", "contoso", sup.CONTOSO_APP, secret=sup.CONTOSO_APP_SECRET)],
        tenant_info, emulator.tls.ca_cert, state)
    ctl.post("/_emulator/faults", json={"replace": True, "refuse": ["list-route"]})
    port = free_port()
    run = sup.Running(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out),
                       "--interval", "0.5", "--metrics-port", str(port)], cwd=tmp_path)
    try:
        assert run.wait_for(lambda lines: any("no presence read for" in ln for ln in lines), 60), run.text
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as metrics:
            ready = wait_http(metrics, "/readyz", 503, 30)
            entry = ready.json()["accounts"]["contoso"]
            assert ready.status_code == 503 and entry["stalled"] is True, ready.text
            assert "every shape of the Agent list" in entry["reason"], entry
            found = samples(metrics.get("/metrics").text)
            assert value(found, "presence_sync_account_stalled", account="contoso") == 1.0
    finally:
        ctl.post("/_emulator/faults", json={"reset": True})
        rc = run.terminate(signal.SIGTERM)
    assert rc == 0, run.text
    line = next(ln for ln in run.text.splitlines() if "no presence read for" in ln)
    assert "ERROR account contoso: no presence read for " in line and "every shape of the Agent list" in line, line
    what, fix = line.split(". To fix: ")
    assert fix.startswith("The tenant refuses Graph's list route"), line  # the error's own fix, not a generic one
    assert "give account contoso a delegated login" in fix and "refuses Graph's list route" not in what, line
    assert sum("no presence read for" in ln for ln in run.text.splitlines()) == 1  # once a minute, not per tick
    assert "Traceback" not in run.text
