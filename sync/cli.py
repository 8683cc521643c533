"""The ``presence-sync`` command line: parse options, build Settings, call one library function, map errors
to exit codes (0 ok, 1 partial failure, 2 configuration or usage error, 3 an account needs a human).

The only module that prints, installs logging handlers or exits.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from dotenv import dotenv_values
from rich.console import Console

from .config import Settings, default_state_dir, load_settings
from .errors import EXIT_OK, EXIT_USAGE, ConfigError, RosterError, SyncError, UsageError
from .observe.redact import TOKENISH

__all__ = ["app", "main"]

app = typer.Typer(
    name="presence-sync",
    help="Keep a contact centre's view of Microsoft Teams presence fresh: Agent list -> UPN validation -> "
         "Graph presence -> SharePoint and CSV.\n\nExit codes: 0 ok, 1 partial failure, 2 configuration or usage "
         "error, 3 an account needs a human (login, consent, expired secret).",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()

_TOKENISH = TOKENISH  # the same rule as the alerts' (sync.observe.redact)


class _Redact(logging.Filter):
    """Last line of defence: nothing that looks like a bearer token reaches a log handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if _TOKENISH.search(msg):
            record.msg, record.args = _TOKENISH.sub("***", msg), None
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"time": datetime.fromtimestamp(record.created, UTC).isoformat().replace("+00:00", "Z"),
                           "level": record.levelname, "logger": record.name, "message": record.getMessage()})


_JSON_LOGS = [False]  # set by setup_logging: errors and warnings then go out as JSON log records too
log = logging.getLogger("sync.cli")


def setup_logging(fmt: str = "text", verbose: bool = False) -> None:
    _JSON_LOGS[0] = fmt == "json"
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Redact())
    if fmt == "json":
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("sync").setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("httpx", "httpcore", "msal", "urllib3", "hpack", "h2"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # office365 logs every failed request with a traceback; we translate and report those errors ourselves.
    logging.getLogger("office365").setLevel(logging.CRITICAL)


def _os_error(exc: OSError) -> UsageError:
    """A file-system failure (unwritable --out, a file where a folder should be, ...) as a usage error."""
    where = f" {exc.filename}" if exc.filename else ""
    return UsageError(f"cannot use{where}: {exc.strerror or exc}.",
                      hint="Check the --out / --state-dir / --config paths and their permissions.")


def _fail(exc: Exception) -> typer.Exit:
    """Print a user-facing error (never a traceback) and return the exit to raise."""
    if isinstance(exc, OSError):
        exc = _os_error(exc)
    if _JSON_LOGS[0] and isinstance(exc, SyncError):  # keep stderr one JSON object per line
        for line in ([f"configuration error: {p}" for p in exc.problems] if isinstance(exc, ConfigError)
                     else [f"error: {exc}"]):
            log.error("%s", line)
        return typer.Exit(exc.exit_code)
    if isinstance(exc, ConfigError):
        err.print(f"[bold red]configuration error[/] ({len(exc.problems)} problem(s)):", highlight=False)
        for p in exc.problems:
            err.print(f"  {p}", highlight=False, markup=False, soft_wrap=True)
        return typer.Exit(EXIT_USAGE)
    if isinstance(exc, SyncError):
        err.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        return typer.Exit(exc.exit_code)
    raise exc


ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="config.xml (default: $PRESENCE_SYNC_CONFIG "
                                                 "or ./config.xml).", show_default=False)]
StateOpt = Annotated[Path | None, typer.Option("--state-dir", help="State directory: key, token caches, SQLite store "
                                                "(default: $PRESENCE_SYNC_STATE_DIR or "
                                                "~/.local/state/presence-sync).", show_default=False)]
OutOpt = Annotated[Path | None, typer.Option("--out", help="Folder for the CSV outputs (default ./out).",
                                              show_default=False)]
AccountOpt = Annotated[list[str] | None, typer.Option("--account", "-a", metavar="ID",
                                                       help="Only this Account Id (repeatable).",
                                                       show_default=False)]
CaOpt = Annotated[Path | None, typer.Option("--ca-bundle", help="Extra CA bundle (PEM) to trust, e.g. the local "
                                             "tenant's ca.pem. The system store and SSL_CERT_FILE / "
                                             "REQUESTS_CA_BUNDLE are always trusted.", show_default=False)]
RosterOpt = Annotated[Path | None, typer.Option("--roster", help="Read the roster from this CSV (a UPN column, "
                                                 "optional Id) instead of SharePoint; no write-back.",
                                                 show_default=False)]


_START = ("Start from config/config.example.xml (copy it to config.xml and fill in your tenant), or run "
          "`presence-sync demo` to see the job work against the local tenant.")


def _config_path(config: Path | None) -> Path | None:
    """--config when given (it must exist); None lets load_settings apply the precedence; usage error if nothing."""
    if config is not None:
        if not config.is_file():
            raise UsageError(f"--config {config}: no such file ({config.expanduser().absolute()}).",
                             hint=f"Check the path. {_START}")
        return config
    if Path("config.xml").is_file() or _env().get("PRESENCE_SYNC_CONFIG", "").strip():
        return None  # load_settings picks $PRESENCE_SYNC_CONFIG (environment, then .env), else ./config.xml
    raise UsageError(f"no configuration: no --config, no $PRESENCE_SYNC_CONFIG and no config.xml in "
                     f"{Path.cwd()}.", hint=f"Pass --config PATH. {_START}")


def _settings(config: Path | None, verbose: bool = False, **flags: Any) -> tuple[Settings, list[Any]]:
    """Load the settings, then install logging in their format and report the config warnings through it."""
    overrides = {k: v for k, v in flags.items() if v is not None and v != () and v != []}
    if "account_filter" in overrides:
        overrides["account_filter"] = tuple(overrides["account_filter"])
    setup_logging(str(overrides.get("log_format", "text")), verbose)  # config errors follow --log-format too
    path = _config_path(config)
    settings, warnings = load_settings(path, overrides, dotenv_path=Path(".env"))
    setup_logging(settings.log_format, verbose)
    for w in warnings:
        if _JSON_LOGS[0]:
            log.warning("%s", w)
        else:
            err.print(f"warning: {w}", highlight=False, markup=False, soft_wrap=True)
    return settings, warnings


def _preflight(settings: Settings) -> None:
    """Usage problems found before any network call: a roster CSV without its UPN column, an unusable --out."""
    if settings.roster_csv is not None:
        from .runtime import require_roster_column, roster_csv_columns

        try:
            columns = roster_csv_columns(settings.roster_csv)
            for acc in settings.active_accounts:
                require_roster_column(settings.roster_csv, columns, acc.upn_column, acc.id)
        except RosterError as exc:  # a flag pointing at the wrong file: a usage error (exit 2)
            raise UsageError(exc.message, hint=exc.hint) from None
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    if not os.access(settings.out_dir, os.W_OK):
        raise UsageError(f"--out {settings.out_dir}: the folder is not writable.", hint="Choose another --out.")


class _DirectoryBar:
    """A cold start's directory read as a progress bar per account (a terminal only; logs get LogProgress)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("partitions, {task.fields[users]:,} users"), TimeElapsedColumn(),
                             console=err, transient=True)
        self._tasks: dict[str, Any] = {}

    def start(self, account_id: str, partitions: int) -> None:
        if not self._tasks:
            self._bar.start()
        self._tasks[account_id] = self._bar.add_task(f"directory {account_id}", total=partitions, users=0)

    def advance(self, account_id: str, users: int, partitions_done: int) -> None:
        self._bar.update(self._tasks[account_id], completed=partitions_done, users=users)

    def finish(self, account_id: str, users: int, seconds: float) -> None:
        self._bar.remove_task(self._tasks.pop(account_id))
        if not self._tasks:
            self._bar.stop()
        log.info("account %s: directory read: %d users in %.1f s", account_id, users, seconds)


def _steps() -> Any:
    """Export and report progress: a bar on a terminal, plain log lines otherwise."""
    from .reporting.progress import BarSteps, LogSteps

    return BarSteps(err) if err.is_terminal and not _JSON_LOGS[0] else LogSteps()


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
    report: Annotated[bool, typer.Option("--report", help="Keep report.html current: rebuilt in the background "
                                                          "whenever the UPN verdicts change.")] = False,
    report_dir: Annotated[Path | None, typer.Option("--report-dir", help="Folder for report.html (default: the "
                                                                         "--out folder).", show_default=False)
                          ] = None,
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
                                metrics_port=metrics_port, metrics_host=metrics_host, on_needs_human=on_needs_human)
        _preflight(settings)
        from .job import run_job

        bar = _DirectoryBar() if err.is_terminal and settings.log_format == "text" else None
        from .reporting.refresh import ReportRefresher

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
) -> None:
    """Check the Agent list's UPNs only: write validation.csv and print findings by code and account.

    A running job already writes validation.csv whenever the Agent list changes; validate takes the state
    directory's lock, so it exits 2 while a job runs on the same --state-dir.

    Example: presence-sync validate --config config.xml --out ./out
    """
    try:
        settings, _ = _settings(config, state_dir=state_dir, out_dir=out_dir, account_filter=account,
                                roster_csv=roster, ca_bundle=ca_bundle)
        _preflight(settings)
        from .lock import state_lock
        from .validate import print_validation_summary, run_validation

        with state_lock(settings.state_dir):  # it updates the directory cache a running job owns
            rows, code = asyncio.run(run_validation(settings))
    except (SyncError, OSError) as exc:
        raise _fail(exc) from None
    print_validation_summary(out, rows, settings.out_dir / "validation.csv")
    raise typer.Exit(code)


def _parse_when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{name} {value!r} is not an ISO 8601 time; use e.g. 2026-11-27T08:00:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


SinceOpt = Annotated[str | None, typer.Option("--since", metavar="TIME", help="Start (ISO 8601, UTC if no offset).",
                                                show_default=False)]
UntilOpt = Annotated[str | None, typer.Option("--until", metavar="TIME", help="End (ISO 8601, exclusive).",
                                                show_default=False)]


def _scope(state_dir: Path | None, since: str | None, until: str | None, account: list[str] | None,
           agent: list[str] | None = None) -> tuple[Path, Any]:
    """The store of --state-dir and the filters, checked (usage errors, exit 2)."""
    from .reporting.data import Scope, store_path

    start, end = _parse_when(since, "--since"), _parse_when(until, "--until")
    if start is not None and end is not None and start >= end:
        raise UsageError(f"--since {since} is not before --until {until}; the range would be empty.")
    db = store_path(_state_dir(state_dir))
    return db, Scope(tuple(account) if account else None, tuple(agent) if agent else None, start, end)


@app.command()
def export(
    state_dir: StateOpt = None,
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
) -> None:
    """Export the audit history (transitions, snapshot, cycles; optionally a daily summary) from the store.

    Files: export_history, export_snapshot, export_cycles (and export_daily_summary) as .csv or .parquet, or
    export.xlsx with one sheet each. A state lasts until the agent's next transition; days are cut in UTC.
    Example: presence-sync export --since 2026-11-01 --until 2026-12-01 --account contoso --format xlsx --daily-summary
    """
    try:
        from .reporting.export import FORMATS, run_export

        if fmt not in FORMATS:
            raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}.")
        setup_logging("text")
        db, scope = _scope(state_dir, since, until, account, agent)
        paths = run_export(db, out_dir or Path("out"), scope, fmt, daily_summary, _steps())
    except (SyncError, OSError) as exc:
        raise _fail(exc) from None
    for p in paths:
        out.print(str(p), highlight=False)


@app.command()
def report(
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for report.html.")] = Path("out"),
    config: ConfigOpt = None,
    state_dir: StateOpt = None,
    account: AccountOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
) -> None:
    """Write report.html: the data-quality report of the store, one self-contained page (no network needed).

    UPN findings by code and account, every item that is not ok with its suggestion, findings over time,
    availability by hour of day, freshness and cycle health per account, the agents whose presence changes most.
    Time-based sections cover the last 7 days unless --since says otherwise. --config only supplies the state
    directory (MsGraphPresenceSource settings and environment, as `run` uses them) when --state-dir is not given.
    Example: presence-sync report --out ./out --since 2026-11-01
    """
    try:
        from .reporting import build_report

        setup_logging("text")
        if state_dir is None and (config is not None or Path("config.xml").is_file()):
            settings, _ = _settings(config)
            state_dir = settings.state_dir
        db, scope = _scope(state_dir, since, until, account)
        path = build_report(db, out_dir, scope, _steps())
    except (SyncError, OSError) as exc:
        raise _fail(exc) from None
    out.print(str(path), highlight=False)


@app.command()
def login(
    account: Annotated[str, typer.Option("--account", "-a", metavar="ID", help="The Account Id to log in.")],
    config: ConfigOpt = None,
    state_dir: StateOpt = None,
    ca_bundle: CaOpt = None,
) -> None:
    """Log a delegated account in once (device code); later runs are silent until the cache is deleted.

    Example: presence-sync login --account contoso.com
    """
    try:
        settings, _ = _settings(config, state_dir=state_dir, account_filter=[account], ca_bundle=ca_bundle)
        from .login import login_account

        message = login_account(settings, account, show=lambda text: err.print(text, markup=False,
                                                                               highlight=False))
    except (SyncError, OSError) as exc:
        raise _fail(exc) from None
    out.print(message, highlight=False)


@app.command()
def doctor(config: ConfigOpt = None, account: AccountOpt = None, ca_bundle: CaOpt = None, state_dir: StateOpt = None,
           json_out: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False) -> None:
    """Check each account (reachable, credential, permissions, domains, list, columns, presence, budget) and name
    the fix for what fails. Exit 0 nothing failed, 3 a person has to act, 2 configuration. Takes no lock.

    Example: presence-sync doctor --config config.xml --account contoso.com
    """
    try:
        settings, _ = _settings(config, state_dir=state_dir, account_filter=account, ca_bundle=ca_bundle)
        from .doctor import run_doctor, show

        reports = run_doctor(settings)
    except (SyncError, OSError) as exc:
        raise _fail(exc) from None
    raise typer.Exit(show(out, reports, json_out))


def _env() -> dict[str, str]:
    """The environment as load_settings sees it: ./.env under the real environment."""
    dot = {k: v for k, v in dotenv_values(".env").items() if v is not None} if Path(".env").is_file() else {}
    return {**dot, **os.environ}


def _state_dir(flag: Path | None) -> Path:
    """--state-dir > PRESENCE_SYNC_STATE_DIR (environment, then .env) > default: the one `run` uses."""
    named = _env().get("PRESENCE_SYNC_STATE_DIR", "").strip()
    return flag or (Path(named).expanduser() if named else default_state_dir())


def _key_store(state_dir: Path | None) -> Any:
    """The same key `run` will use: --state-dir > environment > .env > default; PRESENCE_SYNC_KEY_FILE likewise."""
    from .secrets import KEY_FILE_ENV, KeyStore

    key_file = _env().get(KEY_FILE_ENV)
    return KeyStore.for_paths(_state_dir(state_dir), Path(key_file).expanduser() if key_file else None)


@app.command("encrypt-secret")
def encrypt_secret(state_dir: StateOpt = None) -> None:
    """Read a client secret or password on stdin; print the value for EncryptedSecret / EncryptedPassword.

    The key lives in the state directory (created 0600 on first use) or in $PRESENCE_SYNC_KEY_FILE.
    Example: printf '%s' "$SECRET" | presence-sync encrypt-secret --state-dir /var/lib/presence-sync
    """
    try:
        if sys.stdin.isatty():
            value = getpass.getpass("secret (not echoed): ")
        else:
            value = sys.stdin.read()
            value = value[:-2] if value.endswith("\r\n") else value[:-1] if value.endswith("\n") else value
        if not value:
            raise UsageError("nothing to encrypt: stdin was empty.",
                             hint="Pipe the secret in, e.g. printf '%s' \"$SECRET\" | presence-sync encrypt-secret")
        token = _key_store(state_dir).encrypt(value)
    except (SyncError, OSError) as exc:
        raise _fail(exc) from None
    out.print(token, highlight=False, soft_wrap=True)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                               "help_option_names": []})
def emulator(ctx: typer.Context) -> None:
    """Run the local Microsoft 365 tenant (login, Graph, SharePoint over HTTPS). `presence-sync emulator --help`.

    Example: presence-sync emulator --port 8443 --state-dir ./.state/emulator
    """
    from .emulator.cli import main as emulator_main

    raise typer.Exit(emulator_main(list(ctx.args)))


@app.command()
def bench(
    seconds: Annotated[float, typer.Option("--seconds", help="How long the job runs (scenario 1).")] = 120.0,
    users: Annotated[int, typer.Option("--users", help="Directory users of the generated tenant.")] = 100_000,
    agents: Annotated[int, typer.Option("--agents", help="Agent-list items of the generated tenant.")] = 30_000,
    latency: Annotated[str, typer.Option("--latency", metavar="SPEC",
                                         help="The local tenant's latency model (per kind, p50:p99 ms).")
                       ] = "presence=150:400,other=80",
    multi_seconds: Annotated[float, typer.Option("--multi-seconds",
                                                 help="How long the 10 x 3,000 scenario runs (0: skip it).")] = 90.0,
    baseline_seconds: Annotated[float, typer.Option("--baseline-seconds",
                                                    help="How long each baseline runs.")] = 20.0,
    json_out: Annotated[Path, typer.Option("--json", metavar="FILE", help="Where the figures go.")
                        ] = Path("bench.json"),
) -> None:
    """Benchmark the job against the local tenant with network latency and quotas, next to two baselines.

    Starts the local tenant in its own process, runs the job at --interval 1 from an empty state directory,
    then the bare httpx loop and the official msgraph-sdk against the same tenant, then 10 tenants x 3,000
    agents in one process; prints a table with PASS/FAIL per target and writes the figures as JSON.
    Exit 0 when every target passes, 1 otherwise. Takes about 5 minutes with the defaults.

    Example: presence-sync bench --seconds 120 --json bench.json
    """
    from .bench.run import BenchOptions, run_bench

    setup_logging("text")
    logging.getLogger("sync").setLevel(logging.WARNING)  # the report is the output; cycle lines would drown it
    opts = BenchOptions(users=users, agents=agents, seconds=seconds, latency=latency,
                        baseline_seconds=baseline_seconds, multi_tenants=10 if multi_seconds > 0 else 0,
                        multi_seconds=multi_seconds)
    text, result = run_bench(opts, json_out)
    out.print(text, markup=False, highlight=False, soft_wrap=True)
    out.print(f"figures written to {json_out}", markup=False, highlight=False)
    raise typer.Exit(0 if result == "PASS" else 1)


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option("--dir", help="Where the demo keeps its config, state and outputs.")]
    = Path("demo"),
    cycles: Annotated[int, typer.Option("--cycles", min=1, metavar="N", help="How many cycles to run.")] = 3,
    interval: Annotated[float, typer.Option("--interval", min=0.5, metavar="SECONDS", help="Seconds between cycles.")] = 2.0,
) -> None:
    """Start the local tenant, write a matching config, run a few cycles with write-back, show the outputs.

    Example: presence-sync demo --cycles 3
    """
    setup_logging("text")
    from .demo import run_demo

    try:
        code = run_demo(workdir, cycles=cycles, interval=interval, console=out)
    except (SyncError, OSError) as exc:
        raise _fail(exc) from None
    raise typer.Exit(code)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(EXIT_OK)


if __name__ == "__main__":
    main()
