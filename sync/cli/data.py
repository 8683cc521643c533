"""`export` and `report`: audit files and the HTML data-quality report, from the store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import SyncError, UsageError
from .common import (
    AccountOpt,
    ConfigOpt,
    CsvEncodingOpt,
    OutOpt,
    ReadStoreOpt,
    SinceOpt,
    StateOpt,
    UntilOpt,
    _csv_encoding,
    _fail,
    _scope,
    _settings,
    _steps,
    app,
    out,
    setup_logging,
)


@app.command()
def export(
    state_dir: StateOpt = None,
    store: ReadStoreOpt = None,
    out_dir: OutOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    account: AccountOpt = None,
    agent: Annotated[list[str] | None, typer.Option("--agent", metavar="UPN", help="Only this agent's rows "
                                                    "(UPN, any case; repeatable).", show_default=False)] = None,
    fmt: Annotated[str, typer.Option("--format", metavar="csv|xlsx|parquet",
                                     help="csv: one file per table; xlsx: one workbook, a sheet per table; parquet: "
                                          "one file per table (needs pyarrow).")] = "csv",
    daily_summary: Annotated[bool, typer.Option("--daily-summary", help="Also the seconds each agent spent in each "
                                                "availability per UTC day.")] = False,
    csv_encoding: CsvEncodingOpt = None,
) -> None:
    """Export the audit history (transitions, snapshot, cycles; optionally a daily summary) from the store.

    Files: export_history, export_snapshot, export_cycles (and export_daily_summary) as .csv or .parquet, or
    export.xlsx with one sheet each. A state lasts until the agent's next transition; days are cut in UTC.
    Example: presence-sync export --since 2026-11-01 --until 2026-12-01 --account contoso --format xlsx --daily-summary
    """
    try:
        from ..reporting.export import FORMATS, run_export

        if fmt not in FORMATS:
            raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}.")
        encoding = _csv_encoding(csv_encoding)
        setup_logging("text")
        db, scope = _scope(state_dir, since, until, account, agent, store)
        paths = run_export(db, out_dir or Path("out"), scope, fmt, daily_summary, _steps(), encoding)
    except (SyncError, OSError) as exc:
        raise _fail(exc) from None
    for p in paths:
        out.print(str(p), highlight=False)


@app.command()
def report(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for report.html.")] = Path("out"),
    config: ConfigOpt = None,
    state_dir: StateOpt = None,
    store: ReadStoreOpt = None,
    account: AccountOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
) -> None:
    """Write report.html: the data-quality report of the store, one self-contained page (no network needed).

    UPN findings by code and account, every item that is not ok with its suggestion, findings over time,
    availability by hour of day, freshness and cycle health per account, the agents whose presence changes most.
    Time-based sections cover the last 7 days unless --since says otherwise. --config only supplies the state
    directory or the PostgreSQL store (MsGraphPresenceSource settings and environment, as `run` uses them) when
    neither --state-dir nor --store is given.
    Example: presence-sync report --out ./out --since 2026-11-01
    """
    try:
        from ..reporting import build_report

        setup_logging("text")
        if state_dir is None and store is None and (config is not None or Path("config.xml").is_file()):
            settings, _ = _settings(config)
            state_dir = settings.state_dir
            store = settings.store.reveal() if settings.store is not None else None
        db, scope = _scope(state_dir, since, until, account, store=store)
        path = build_report(db, out_dir, scope, _steps())
    except (SyncError, OSError) as exc:
        raise _fail(exc) from None
    out.print(str(path), highlight=False)
