"""The job with --metrics-port against the local tenant: /metrics scraped and parsed with prometheus_client, its
values checked against the job's own outputs; /healthz and /readyz answer; the server ends with the job."""

from __future__ import annotations

import collections
import signal
import socket
import time
from pathlib import Path
from typing import Any

import e2e_support as sup
import httpx
from metrics_support import free_port, samples, value, wait_http

from sync.emulator.server import EmulatorServer

PRESENCE_PATH = ["/v1.0/communications"]


def test_metrics_scraped_and_parsed(tmp_path: Path, emulator: EmulatorServer, tenant_info: dict[str, Any],
                                    ctl: httpx.Client) -> None:
    config, state, out = sup.both_tenants(tmp_path, tenant_info, emulator)
    port = free_port()
    ctl.post("/_emulator/faults", json={"burst_429": 2, "burst_retry_after": 0.3, "paths": PRESENCE_PATH})
    started = time.time()
    run = sup.Running(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out),
                       "--interval", "1", "--metrics-port", str(port)], cwd=tmp_path)
    try:
        assert run.wait_for(lambda _: all(len(run.cycle_lines(a)) >= 2 for a in ("contoso", "fabrikam")), 90), \
            run.text
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
            assert c.get("/healthz").status_code == 200
            ready = wait_http(c, "/readyz", 200)
            assert ready.status_code == 200, ready.text
            assert set(ready.json()["accounts"]) == {"contoso", "fabrikam"}
            scrape = c.get("/metrics")
        assert scrape.status_code == 200
        found = samples(scrape.text)
        _, rows = sup.read_csv(out / "validation.csv")
        by_status = collections.Counter((r["account_id"], r["status"]) for r in rows)
        _, presence_rows = sup.read_csv(out / "presence.csv")
        held = collections.Counter(r["account_id"] for r in presence_rows)
        for account in ("contoso", "fabrikam"):
            for status in ("ok", "fixed", "invalid"):
                assert value(found, "presence_sync_agents", account=account, status=status) == \
                    by_status[(account, status)], (account, status)
            assert value(found, "presence_sync_presences", account=account) + \
                value(found, "presence_sync_presences_stale", account=account) == held[account]
            assert value(found, "presence_sync_requests_total", account=account, endpoint="presence",
                         status="200") >= 2
            assert value(found, "presence_sync_cycle_duration_seconds_count", account=account) >= 2
            assert value(found, "presence_sync_cycles_total", account=account, result="ok") >= 1
            assert value(found, "presence_sync_last_good_cycle_timestamp_seconds", account=account) >= started
            assert value(found, "presence_sync_needs_human", account=account) == 0
            assert 0 < value(found, "presence_sync_token_expiry_seconds", account=account) <= 3600 * 25
            assert value(found, "presence_sync_presence_age_oldest_seconds", account=account) >= \
                value(found, "presence_sync_presence_age_p95_seconds", account=account) >= 0
        assert sum(value(found, "presence_sync_requests_total", account=a, endpoint="token")
                   for a in ("contoso", "fabrikam")) >= 1
        assert value(found, "presence_sync_requests_total", account="fabrikam", endpoint="sharepoint_contextinfo") >= 1
        # The two 429s: counted by status, as throttling, and as seconds paused on Retry-After.
        assert sum(value(found, "presence_sync_requests_total", account=a, endpoint="presence", status="429")
                   for a in ("contoso", "fabrikam")) == 2
        assert sum(value(found, "presence_sync_throttled_total", account=a) for a in ("contoso", "fabrikam")) >= 2
        assert sum(value(found, "presence_sync_retry_after_seconds_total", account=a)
                   for a in ("contoso", "fabrikam")) >= 0.3
        assert not any("https://" in str(lab) for _, lab, _ in found)  # endpoint names, never URLs
    finally:
        rc = run.terminate(signal.SIGTERM)
    assert rc == 0, run.text
    assert "Traceback" not in run.text
    assert f"http://127.0.0.1:{port}/metrics" in run.text  # where the metrics are is logged
    with socket.socket() as s:  # the server ended with the job
        assert s.connect_ex(("127.0.0.1", port)) != 0


def test_metrics_port_in_use_is_a_usage_error(tmp_path: Path, emulator: EmulatorServer,
                                              tenant_info: dict[str, Any]) -> None:
    args, _, _ = sup.contoso_app_run(tmp_path, tenant_info, emulator.tls.ca_cert)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = sup.run_cli([*args[:-1], "--interval", "1", "--metrics-port", str(port)], cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert f"--metrics-port {port}: cannot listen on 127.0.0.1:{port}" in " ".join(proc.stderr.split())
    assert "Traceback" not in proc.stderr
