"""The HTML data-quality report and the audit export, built with pandas from the store.

    data.py      read-only pandas queries of the store (Scope: accounts, agents, time range)
    timeline.py  time in each state from transitions, cut at day or hour boundaries (UTC)
    summary.py   the report's figures, one frame per section
    charts.py    inline SVG charts
    html.py      report.html (self-contained, every text escaped)
    export.py    `export`: history, snapshot, cycles, daily summary as CSV, xlsx or Parquet
    refresh.py   `run --report`: rebuilds report.html off the presence path when the verdicts change
"""

from __future__ import annotations

import os
from pathlib import Path

from ..outputs.csv import atomic_write
from .data import Scope, connect
from .html import render
from .progress import NO_PROGRESS, Steps
from .summary import summarise

__all__ = ["REPORT_NAME", "Scope", "build_report"]

REPORT_NAME = "report.html"


def build_report(db: str | os.PathLike[str], out_dir: Path, scope: Scope, progress: Steps = NO_PROGRESS) -> Path:
    """Write ``out_dir/report.html`` (atomically) from the store at ``db`` (a SQLite path or a PostgreSQL URL);
    returns its path."""
    progress.begin("report", 6)
    conn = connect(db)
    try:
        data = summarise(conn, scope, progress)
    finally:
        conn.close()
    progress.step("writing report.html")
    path = atomic_write(out_dir / REPORT_NAME, lambda fh: fh.write(render(data)))
    progress.done(f"report: {path} ({len(data.accounts)} account(s), {len(data.bad_rows):,} item(s) not ok)")
    return path
