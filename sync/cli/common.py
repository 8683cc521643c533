"""What every command shares: the Typer app, consoles, logging, options, settings loading and error exits.

The only place (with the command modules beside it) that prints, installs logging handlers or exits.
"""

from __future__ import annotations

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

from ..config import Settings, csv_encoding_problem, default_state_dir, load_settings
from ..errors import EXIT_USAGE, ConfigError, RosterError, SyncError, UsageError
from ..observe.redact import TOKENISH
from ..version import package_version

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


def _print_version(value: bool) -> None:
    if value:
        out.print(f"presence-sync {package_version()}", highlight=False, markup=False)
        raise typer.Exit(0)


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                help="Print the version (from the package metadata) and exit.")]
          = False) -> None:
    pass


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


def _os_error(exc: OSError, paths: str) -> UsageError:
    """A file-system failure (unwritable --out, a file where a folder should be, ...) as a usage error."""
    where = f" {exc.filename}" if exc.filename else ""
    return UsageError(f"cannot use{where}: {exc.strerror or exc}.",
                      hint=f"Check the {paths} {'paths and their' if '/' in paths else 'path and its'} permissions.")


def _fail(exc: Exception, paths: str = "--out / --state-dir / --config") -> typer.Exit:
    """Print a user-facing error (never a traceback) and return the exit to raise; ``paths`` are the command's
    path options, named in the hint of a file-system error."""
    if isinstance(exc, OSError):
        exc = _os_error(exc, paths)
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


ReadStoreOpt = Annotated[str | None, typer.Option("--store", metavar="URL",
                                                 help="Read the PostgreSQL store several replicas share "
                                                      "(postgresql://USER@HOST:PORT/DATABASE; default "
                                                      "PRESENCE_SYNC_STORE, else the SQLite store of the state "
                                                      "directory).", show_default=False)]


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


CsvEncodingOpt = Annotated[str | None, typer.Option("--csv-encoding", metavar="utf-8|utf-8-sig",
                                                    help="Encoding of the CSV files written: utf-8 (the default) or "
                                                         "utf-8-sig, with a byte-order mark, so Excel on Windows "
                                                         "shows accented names right (also "
                                                         "MsGraphPresenceSource/@CsvEncoding).",
                                                    show_default=False)]


def _csv_encoding(value: str | None) -> str:
    """--csv-encoding of a command that reads no config.xml: utf-8 unless given; a usage error when unknown."""
    if value is None:
        return "utf-8"
    why = csv_encoding_problem(value)
    if why:
        raise UsageError(f"--csv-encoding {why}")
    return value.strip().lower()


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
        from ..runtime import require_roster_column, roster_csv_columns

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
    """Long work of the loops as progress bars per account, on a terminal only (logs get LogProgress): a cold
    start's directory read, and a write-back round of many items such as the first fill."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[unit]}"), TimeElapsedColumn(), console=err, transient=True)
        self._tasks: dict[str, Any] = {}

    def _add(self, key: str, description: str, total: int, unit: str) -> None:
        if not self._tasks:
            self._bar.start()
        self._tasks[key] = self._bar.add_task(description, total=total, unit=unit)

    def _remove(self, key: str) -> None:
        task = self._tasks.pop(key, None)
        if task is not None:
            self._bar.remove_task(task)
        if not self._tasks:
            self._bar.stop()

    def start(self, account_id: str, partitions: int) -> None:
        self._add(account_id, f"directory {account_id}", partitions, "partitions, 0 users")

    def advance(self, account_id: str, users: int, partitions_done: int) -> None:
        self._bar.update(self._tasks[account_id], completed=partitions_done, unit=f"partitions, {users:,} users")

    def finish(self, account_id: str, users: int, seconds: float) -> None:
        self._remove(account_id)
        log.info("account %s: directory read: %d users in %.1f s", account_id, users, seconds)

    def fill(self, account_id: str, written: int, total: int) -> None:
        key = "fill:" + account_id
        if key not in self._tasks:
            self._add(key, f"write-back {account_id}", total, "items")
        self._bar.update(self._tasks[key], completed=written)

    def fill_done(self, account_id: str, written: int, total: int, seconds: float) -> None:
        self._remove("fill:" + account_id)


def _steps() -> Any:
    """Export and report progress: a bar on a terminal, plain log lines otherwise."""
    from ..reporting.progress import BarSteps, LogSteps

    return BarSteps(err) if err.is_terminal and not _JSON_LOGS[0] else LogSteps()


SinceOpt = Annotated[str | None, typer.Option("--since", metavar="TIME", help="Start (ISO 8601, UTC if no offset).",
                                                show_default=False)]


UntilOpt = Annotated[str | None, typer.Option("--until", metavar="TIME", help="End (ISO 8601, exclusive).",
                                                show_default=False)]


def _scope(state_dir: Path | None, since: str | None, until: str | None, account: list[str] | None,
           agent: list[str] | None = None, store: str | None = None) -> tuple[str | Path, Any]:
    """The store (--store, PRESENCE_SYNC_STORE, or the SQLite store of --state-dir) and the filters, checked
    (usage errors, exit 2)."""
    from ..reporting.data import Scope, store_path
    from ..store import is_url

    start, end = _parse_when(since, "--since"), _parse_when(until, "--until")
    if start is not None and end is not None and start >= end:
        raise UsageError(f"--since {since} is not before --until {until}; the range would be empty.")
    url = (store or "").strip() or (_env().get("PRESENCE_SYNC_STORE", "").strip() if state_dir is None else "")
    if url and not is_url(url):
        raise UsageError(f"--store must be a postgresql://USER@HOST:PORT/DATABASE URL, not {url[:40]!r} (without "
                         "it the SQLite store of --state-dir is read)")
    db: str | Path = url or store_path(_state_dir(state_dir))
    return db, Scope(tuple(account) if account else None, tuple(agent) if agent else None, start, end)


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
    from ..secrets import KEY_FILE_ENV, KeyStore

    key_file = _env().get(KEY_FILE_ENV)
    return KeyStore.for_paths(_state_dir(state_dir), Path(key_file).expanduser() if key_file else None)

def _parse_when(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{name} {value!r} is not an ISO 8601 time; use e.g. 2026-11-27T08:00:00Z") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)
