"""`run` and `validate`: the job itself, and the Agent list's UPN check alone."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from ..errors import SyncError, UsageError
from .common import (
    AccountOpt,
    CaOpt,
    ConfigOpt,
    CsvEncodingOpt,
    OutOpt,
    RosterOpt,
    StateOpt,
    _DirectoryBar,
    _fail,
    _preflight,
    _settings,
    app,
    err,
    out,
)


@app.command()
def run(
    config: ConfigOpt = None,
    once: Annotated[bool, typer.Option("--once", help="Read the roster and presence once, write back every "
                                                      "changed item, and exit.")] = False,
    interval: Annotated[float | None, typer.Option("--interval", metavar="SECONDS",
                                                   help="Seconds between presence reads (default 5). The Agent "
                                                        "list, directory and write-back run beside them at "
                                                        "WriteBack/@Interval.",
                                                   min=0.1, show_default=False)] = None,
    out_dir: OutOpt = None,
    state_dir: StateOpt = None,
    account: AccountOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Write nothing to SharePoint; print what would "
                                                            "change.")] = False,
    log_format: Annotated[str | None, typer.Option("--log-format", metavar="text|json",
                                                   help="text or json (default text).",
                                                   show_default=False)] = None,
    roster: RosterOpt = None,
    ca_bundle: CaOpt = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every HTTP request.")] = False,
    metrics_port: Annotated[int | None, typer.Option("--metrics-port", metavar="PORT", min=1, max=65535,
                                                     help="Serve Prometheus metrics on /metrics, and /healthz and "
                                                          "/readyz, on this port (default off; also "
                                                          "MsGraphPresenceSource/@MetricsPort).",
                                                     show_default=False)] = None,
    metrics_host: Annotated[str | None, typer.Option("--metrics-host", metavar="HOST",
                                                     help="Address the metrics listen on (default 127.0.0.1; "
                                                          "0.0.0.0 for every interface).",
                                                     show_default=False)] = None,
    on_needs_human: Annotated[str | None, typer.Option("--on-needs-human", metavar="CMD",
                                                       help="Run CMD once when an account needs a human (login, "
                                                            "consent, secret, 5 failed cycles) and once when it "
                                                            "recovers: no shell; the alert in PRESENCE_SYNC_ACCOUNT"
                                                            ", _KIND, _STATE, _MESSAGE, _ACTION, _SINCE and as "
                                                            "JSON on stdin; stopped after 30 s.",
                                                       show_default=False)] = None,
    store: Annotated[str | None, typer.Option("--store", metavar="URL",
                                              help="A PostgreSQL store several replicas share: "
                                                   "postgresql://USER@HOST:PORT/DATABASE (also PRESENCE_SYNC_STORE"
                                                   " or <Store Url=...>; the password from the URL, PGPASSWORD or "
                                                   "~/.pgpass). Default: SQLite in the state directory.",
                                              show_default=False)] = None,
    report: Annotated[bool, typer.Option("--report", help="Keep report.html current: rebuilt in the background "
                                                          "whenever the UPN verdicts change.")] = False,
    report_dir: Annotated[Path | None, typer.Option("--report-dir", help="Folder for report.html (default: the "
                                                                         "--out folder).", show_default=False)
                          ] = None,
    csv_encoding: CsvEncodingOpt = None,
    report_every: Annotated[float, typer.Option("--report-every", metavar="SECONDS", min=1.0,
                                                help="Rebuild report.html at most this often.")] = 30.0,
) -> None:
    """Collect presence for every account, once or every N seconds.

    Per account, presence, the Agent list + directory, the domains and the write-back run as loops of their own;
    presence never waits for the others. SIGINT/SIGTERM: every loop finishes its current writes, exit 0.

    Alerts also go to <Alerts Webhook="https://..."/> (see the README's Monitoring section).

    Example: presence-sync run --config config.xml --interval 5 --out ./out --metrics-port 9464
    """
    try:
        if log_format not in (None, "text", "json"):
            raise UsageError(f"--log-format must be text or json, not {log_format!r}")
        settings, _ = _settings(config, verbose, state_dir=state_dir, out_dir=out_dir, interval=interval,
                                once=once or None, dry_run=dry_run or None, log_format=log_format,
                                account_filter=account, roster_csv=roster, ca_bundle=ca_bundle,
                                metrics_port=metrics_port, metrics_host=metrics_host, on_needs_human=on_needs_human,
                                store=store, csv_encoding=csv_encoding)
        _preflight(settings)
        from ..job import run_job

        bar = _DirectoryBar() if err.is_terminal and settings.log_format == "text" else None
        from ..reporting.refresh import ReportRefresher

        refresher = (ReportRefresher.for_run(settings, report_dir, report_every) if report or report_dir
                     else None)
        try:
            result = asyncio.run(run_job(settings, progress=bar,
                                         on_validation=refresher.notify if refresher else None))
        finally:
            if refresher is not None:
                refresher.close()
    except (SyncError, OSError) as exc:
        raise _fail(exc) from None
    raise typer.Exit(result.exit_code)


@app.command()
def validate(
    config: ConfigOpt = None,
    out_dir: OutOpt = None,
    state_dir: StateOpt = None,
    account: AccountOpt = None,
    roster: RosterOpt = None,
    ca_bundle: CaOpt = None,
    csv_encoding: CsvEncodingOpt = None,
) -> None:
    """Check the Agent list's UPNs only: write validation.csv and print findings by code and account.

    A running job already writes validation.csv whenever the Agent list changes; validate takes the state
    directory's lock, so it exits 2 while a job runs on the same --state-dir.

    Example: presence-sync validate --config config.xml --out ./out
    """
    try:
        settings, _ = _settings(config, state_dir=state_dir, out_dir=out_dir, account_filter=account,
                                roster_csv=roster, ca_bundle=ca_bundle, csv_encoding=csv_encoding)
        _preflight(settings)
        from ..lock import state_lock
        from ..validate import print_validation_summary, run_validation

        with state_lock(settings.state_dir):  # it updates the directory cache a running job owns
            rows, code = asyncio.run(run_validation(settings))
    except (SyncError, OSError) as exc:
        raise _fail(exc) from None
    print_validation_summary(out, rows, settings.out_dir / "validation.csv")
    raise typer.Exit(code)
