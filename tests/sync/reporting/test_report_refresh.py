"""`run --report`'s worker and the store's finding counts, on a real store and real files."""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sync.models import CycleResult, ValidationRow
from sync.reporting import Scope, build_report
from sync.reporting.refresh import ReportRefresher
from sync.store import Store

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)


def verdicts(invalid: int) -> list[ValidationRow]:
    rows = [ValidationRow(i, f"agent{i}@contoso.com", f"agent{i}@contoso.com", "ok", (), "") for i in range(1, 6)]
    rows += [ValidationRow(100 + i, f"bad {i}", "", "invalid", ("SYNTAX",), "error") for i in range(invalid)]
    return rows


def runs(db: Path) -> list[tuple[str, int, int, str]]:
    with sqlite3.connect(db) as c:
        return c.execute("SELECT account_id, items, invalid, codes FROM validation_runs ORDER BY rowid").fetchall()


def test_the_store_records_finding_counts_only_when_the_verdicts_change(tmp_path: Path) -> None:
    db = tmp_path / "presence-sync.sqlite"
    with Store(db) as store:
        store.save_validation("contoso", verdicts(2), T0)
        store.save_validation("contoso", verdicts(2), T0 + timedelta(minutes=1))  # same verdicts: no row
        store.save_validation("contoso", verdicts(1), T0 + timedelta(minutes=2))
    assert runs(db) == [("contoso", 7, 2, '{"SYNTAX":2}'), ("contoso", 6, 1, '{"SYNTAX":1}')]


def invalid_cell(page: Path) -> str:
    html = page.read_text(encoding="utf-8")
    start = html.index('data-account="contoso" data-status="invalid">') + len('data-account="contoso" data-status="invalid">')
    return html[start:html.index("<", start)]


def test_the_worker_rebuilds_at_most_once_per_interval_and_once_more_on_close(tmp_path: Path) -> None:
    db = tmp_path / "presence-sync.sqlite"
    with Store(db) as store:
        store.save_validation("contoso", verdicts(3))
        store.record_cycle(CycleResult("contoso", datetime.now(UTC), agents=8, presences=5, duration_s=0.1))
        worker = ReportRefresher(tmp_path, tmp_path / "out", Scope(), every=3600.0).start()
        try:
            for _ in range(1000):
                worker.notify()  # only sets a flag; a burst of changes is one build
            page = tmp_path / "out" / "report.html"
            deadline = time.monotonic() + 60
            while worker.builds == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert worker.builds == 1 and invalid_cell(page) == "3"
            store.save_validation("contoso", verdicts(4))
            worker.notify()  # inside the interval: waits, however many notifications come
            time.sleep(0.5)
            assert worker.builds == 1 and invalid_cell(page) == "3"
        finally:
            worker.close()  # the pending change is built before the worker ends
        assert worker.builds == 2 and invalid_cell(page) == "4"


def test_close_without_a_pending_change_builds_nothing(tmp_path: Path) -> None:
    db = tmp_path / "presence-sync.sqlite"
    Store(db).close()
    worker = ReportRefresher(tmp_path, tmp_path / "out", Scope(), every=1.0).start()
    worker.close()
    assert worker.builds == 0 and not (tmp_path / "out" / "report.html").exists()
    assert build_report(db, tmp_path / "out", Scope()).is_file()  # an empty store still gives a page
