"""Never silent, end to end: the real job (in-process, small stall periods) against the local tenant, whose
presence endpoint answers every call with a 5xx. The account says why it reads no presence and what to do, once a
period, not once a tick; /readyz calls it stalled, /metrics shows the gauge at 1 and the needs-a-human incident
open; when presence answers again, all of it ends."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import e2e_support as sup
import httpx
import pytest
from metrics_support import free_port, samples, value

from sync.config import Settings, load_settings
from sync.emulator.server import EmulatorServer
from sync.job import JobReport, run_job
from sync.scheduler import Scheduler

STALL = "no presence read for"


class InProcessJob:
    """``run_job`` on an event loop of its own in a thread, with the stall periods shrunk through ``on_start``."""

    def __init__(self, settings: Settings, *, log_every: float, alert_after: float) -> None:
        self.sched: Scheduler | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.report: JobReport | None = None
        self.failure: BaseException | None = None
        self._started = threading.Event()

        def on_start(sched: Scheduler) -> None:
            sched.stall_log_every, sched.stall_alert_after = log_every, alert_after
            self.sched, self.loop = sched, asyncio.get_running_loop()
            self._started.set()

        def main() -> None:
            try:
                self.report = asyncio.run(run_job(settings, install_signals=False, on_start=on_start))
            except BaseException as exc:  # noqa: BLE001 - handed to the test
                self.failure = exc
            finally:
                self._started.set()

        self.thread = threading.Thread(target=main, name="job", daemon=True)
        self.thread.start()
        assert self._started.wait(30) and self.failure is None, self.failure

    def stop(self) -> JobReport:
        if self.loop is not None and self.sched is not None and self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.sched.request_stop)
        self.thread.join(30)
        assert not self.thread.is_alive() and self.failure is None, self.failure
        assert self.report is not None
        return self.report


def until(pred: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)


def test_an_account_that_cannot_read_presence_says_why_is_stalled_and_recovers(
        tmp_path: Path, emulator: EmulatorServer, tenant_info: dict[str, Any], ctl: httpx.Client,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sync")
    state, out = tmp_path / "state", tmp_path / "out"
    sup.ARTIFACTS.add_dir(state, out)
    config = sup.write_config(tmp_path / "config.xml", [
        sup.Account("contoso", "contoso", sup.CONTOSO_APP, secret=sup.CONTOSO_APP_SECRET)],
        tenant_info, emulator.tls.ca_cert, state)
    assert ctl.post("/_emulator/faults", json={"replace": True, "error_rate": 1.0,
                                               "paths": ["/v1.0/communications"]}).status_code == 200
    port = free_port()
    settings, _ = load_settings(config, {"state_dir": state, "out_dir": out, "interval": 0.5,
                                         "metrics_port": port}, env={})

    def stall_lines() -> list[logging.LogRecord]:
        return [r for r in caplog.records if STALL in r.getMessage()]

    job = InProcessJob(settings, log_every=1.0, alert_after=2.0)
    metrics = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5)
    try:
        first = until(stall_lines, 20, "the stall's ERROR line")[0]
        assert first.levelno == logging.ERROR
        line = first.getMessage()
        assert line.startswith(f"account contoso: {STALL} ") and "presence cannot be read: " in line, line
        assert "To fix: Run `presence-sync doctor --account contoso`" in line, line

        def stalled_readyz() -> dict[str, Any] | None:
            r = metrics.get("/readyz")
            entry = r.json()["accounts"]["contoso"]
            return entry if r.status_code == 503 and entry.get("stalled") else None

        entry = until(stalled_readyz, 10, "/readyz: stalled")
        assert entry["ready"] is False and entry["reason"].startswith(STALL), entry
        assert "To fix: Run `presence-sync doctor --account contoso`" in entry["reason"], entry

        def scraped() -> list[tuple[str, dict[str, str], float]]:
            return samples(metrics.get("/metrics").text)

        found = until(lambda: (f := scraped()) and value(f, "presence_sync_incident_open", account="contoso",
                                                        kind="needs_human") == 1.0 and f, 10, "the alert")
        assert value(found, "presence_sync_account_stalled", account="contoso") == 1.0
        assert value(found, "presence_sync_presence_read_age_seconds", account="contoso") >= 1.5
        until(lambda: len(stall_lines()) >= 3, 10, "a line a period while stalled")

        assert ctl.post("/_emulator/faults", json={"reset": True}).status_code == 200  # presence answers again
        until(lambda: any("presence is read again" in r.getMessage() for r in caplog.records), 15, "the recovery")
        found = until(lambda: (f := scraped()) and value(f, "presence_sync_account_stalled",
                                                        account="contoso") == 0.0 and f, 10, "the gauge at 0")
        assert value(found, "presence_sync_incident_open", account="contoso", kind="needs_human") == 0.0
        until(lambda: metrics.get("/readyz").status_code == 200, 10, "/readyz ready again")
    finally:
        ctl.post("/_emulator/faults", json={"reset": True})
        metrics.close()
        report = job.stop()
    assert report.exit_code == 0  # asked to stop
    lines = stall_lines()
    gaps = [b.created - a.created for a, b in zip(lines, lines[1:], strict=False)]
    assert gaps and min(gaps) >= 0.9, gaps  # once a period (1 s here), not once a tick (0.5 s)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert not sup.leaks(sup.known_secrets(tenant_info, emulator), [], [text])
