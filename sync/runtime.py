"""Wiring for one account: token provider, Graph clients and budgets, roster source, and its four loops."""

from __future__ import annotations

import csv
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .auth import AccountAuth, AuthSettings
from .config import AccountConfig, WriteBackColumns
from .errors import GraphError, NeedsHumanError, PermanentGraphError, RosterError, TransientGraphError
from .graph.client import GraphClient
from .graph.lists import GraphListRoster
from .graph.shapes import ShapeBook, is_refusal
from .http import RequestBudget, TrustConfig, new_async_client
from .loops import AccountLoops, Cadence, RosterSource
from .loops.reports import ReportsLoop
from .loops.roster import DirectoryProgress
from .models import AgentRow, WriteResult
from .quota import ResourceUnitBudget, RetryAfterGate
from .store import Store

__all__ = ["AccountRuntime", "CsvRoster", "ListLadder", "RuntimeOptions", "require_roster_column",
           "roster_csv_columns"]

log = logging.getLogger(__name__)

PRESENCE_LANES = 8  # httpx clients of 8 connections each for the presence calls: 64 calls in flight at most


@dataclass(frozen=True)
class RuntimeOptions:
    state_dir: Path
    trust: TrustConfig
    presence_limit: int = 1500
    presence_window: float = 30.0
    cadence: Cadence = field(default_factory=Cadence)
    columns: WriteBackColumns = field(default_factory=WriteBackColumns)
    dry_run: bool = False
    roster_csv: Path | None = None
    interval: float = 5.0
    sharepoint_ru_per_minute: int = 1250
    progress: DirectoryProgress | None = None
    csv_encoding: str = "utf-8"  # of the validation.csv the reports loop uploads


def roster_csv_columns(path: Path) -> list[str]:
    """The column names in a roster CSV's first row; RosterError when the file cannot be read."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            return next(csv.reader(f), [])
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise RosterError(f"--roster {path}: cannot read it: {why}.",
                          hint="Pass a UTF-8 CSV whose first row names the UPN column.") from exc


def require_roster_column(path: Path, columns: list[str], column: str, account_id: str) -> None:
    """RosterError unless the roster CSV has the account's UPN column."""
    if column not in columns:
        raise RosterError(f"--roster {path}: no column named {column!r} in the first row "
                          f"(columns: {', '.join(columns) or 'none'}).",
                          hint=f"Name the UPN column {column!r} (account {account_id!r}, AgentList/@UpnColumn), "
                               "optionally with an Id column.")


@dataclass
class CsvRoster:
    """``--roster FILE.csv``: the UPN column (and an optional ``Id`` column) from a CSV; no write-back."""

    path: Path
    upn_column: str
    account_id: str = ""

    async def read(self) -> list[AgentRow]:
        """The rows; RosterError (the job keeps the last good roster) for a file that cannot be read as CSV."""
        require_roster_column(self.path, roster_csv_columns(self.path), self.upn_column, self.account_id)
        line = 1
        try:
            with self.path.open(newline="", encoding="utf-8-sig") as f:
                reader = csv.DictReader(f)
                rows = []
                for n, rec in enumerate(reader, start=1):
                    line = reader.line_num
                    raw_id = (rec.get("Id") or rec.get("ID") or "").strip()
                    item_id = int(raw_id) if raw_id.isascii() and raw_id.isdigit() else n  # not "²"
                    rows.append(AgentRow(item_id, rec.get(self.upn_column), None))
                return rows
        except OSError as exc:
            raise RosterError(f"{self.path}: cannot read the roster CSV: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise RosterError(f"{self.path}: not UTF-8 text after line {line} (byte {exc.start} of a read block).",
                              hint="Save the roster as UTF-8 CSV.") from exc
        except csv.Error as exc:
            raise RosterError(f"{self.path}:{line + 1}: not a readable CSV row: {exc}.",
                              hint="Fix or remove that row (a cell may hold an unclosed quote or be too long).") from exc

    async def write(self, updates: Mapping[int, Mapping[str, str]]) -> WriteResult:
        return WriteResult()


class ListLadder:
    """The Agent list of an app-only account: Graph's list route, or SharePoint REST once the tenant refuses the
    list route (SharePoint Online takes app-only tokens there only from certificate credentials: when it refuses
    this one too, NoFallbackError says what to change)."""

    def __init__(self, primary: GraphListRoster, fallback: Callable[[], RosterSource], shapes: ShapeBook) -> None:
        self.primary = primary
        self._make = fallback
        self._fallback: RosterSource | None = None
        self.shapes = shapes

    def _source(self) -> Any:
        if self.shapes.current("list") == "list-route":
            return self.primary
        if self._fallback is None:
            self._fallback = self._make()
        return self._fallback

    async def _call(self, name: str, *args: Any) -> Any:
        source = self._source()
        try:
            return await getattr(source, name)(*args)
        except GraphError as exc:
            if source is self.primary and is_refusal(exc):
                self.shapes.refuse("list", "list-route", exc)
                return await self._call(name, *args)
            token_refused = isinstance(exc, TransientGraphError) and exc.status == 401
            if source is not self.primary and (token_refused or is_refusal(exc) or (
                    isinstance(exc, PermanentGraphError) and exc.status == 403)):
                self.shapes.refuse("list", "sharepoint-rest", exc)
            raise

    async def read(self) -> list[AgentRow]:
        return list(await self._call("read"))

    async def write(self, updates: Mapping[int, Mapping[str, str]]) -> WriteResult:
        result: WriteResult = await self._call("write", updates)
        return result

    async def upload(self, library: str, folder: str, name: str, data: bytes, content_type: str) -> None:
        await self._call("upload", library, folder, name, data, content_type)

    def close(self) -> None:
        close = getattr(self._fallback, "close", None)
        if close is not None:
            close()


class AccountRuntime:
    """Everything one account needs across cycles; built once per process."""

    def __init__(self, account: AccountConfig, opts: RuntimeOptions, store: Store, cipher: Any,
                 sync_http: httpx.Client, budgets: dict[tuple[str, str], RequestBudget] | None = None,
                 quotas: dict[tuple[str, str], ResourceUnitBudget] | None = None,
                 gates: dict[tuple[str, str], RetryAfterGate] | None = None) -> None:
        self.account = account
        self.account_id: str = account.id
        self.opts = opts
        self.dry_run = opts.dry_run
        self.store = store
        self.auth = AccountAuth(AuthSettings.from_account(account), opts.state_dir, cipher, sync_http)
        self.login_thread: threading.Thread | None = None
        # Graph's presence limit and SharePoint's quota are per app and tenant: accounts sharing both share them.
        self._budgets = budgets if budgets is not None else {}
        self._quotas = quotas if quotas is not None else {}
        self._gates = gates if gates is not None else {}  # directory reads: Retry-After per app and tenant
        self._loops: AccountLoops | None = None
        self._clients: list[httpx.AsyncClient] = []
        self.shapes = ShapeBook(account.id, store)  # the request shapes this tenant accepts (graph/shapes.py)

    @property
    def ready(self) -> bool:
        return self.auth.has_login()

    def start_device_login(self, stop_flag: threading.Event, wait: bool) -> None:
        """Log where to log in (the seed's wording) and, unless ``wait`` is False, poll in the background."""
        login = self.auth.begin_device_login()
        log.warning("Graph API needs authentication for account with ID '%s' (tenant: %s). "
                    "Please login on %s with code %s", self.account_id, self.account.tenant_id,
                    login.verification_uri, login.user_code)
        if not wait:
            return

        def poll() -> None:
            try:
                self.auth.finish_device_login(login, should_stop=stop_flag.is_set)
                log.info("account %s: login complete; collecting presence", self.account_id)
            except NeedsHumanError as exc:  # expired or declined: the next tick asks again with a new code
                if not stop_flag.is_set():
                    log.error("%s", exc)
            finally:
                self.login_thread = None
        self.login_thread = threading.Thread(target=poll, name=f"login-{self.account_id}", daemon=True)
        self.login_thread.start()

    def _roster(self, graph: GraphClient, ru: ResourceUnitBudget) -> RosterSource:
        acc = self.account
        if self.opts.roster_csv is not None:
            return CsvRoster(self.opts.roster_csv, acc.upn_column, acc.id)
        if not acc.site_url:
            raise RosterError(f"account '{acc.id}' has no <AgentList SiteUrl=...>; add one or pass --roster FILE.csv")
        if acc.auth == "secret":
            # SharePoint REST refuses app-only tokens minted from a secret: use Graph's list route. Its reads wait
            # out a Retry-After any SharePoint request of this app and tenant got, and a 429 they get holds writes.
            graph.budgets["sites"] = ru.gate
            route = GraphListRoster(graph, acc.site_url, acc.list_title, acc.upn_column, ru=ru)
            return ListLadder(route, lambda: self._rest_roster(ru), self.shapes)
        return self._rest_roster(ru)

    def _rest_roster(self, ru: ResourceUnitBudget) -> RosterSource:
        # office365 costs ~30 MB: only accounts that use REST load it
        from .sharepoint import SharePointRoster

        acc = self.account
        assert acc.site_url is not None
        return SharePointRoster(acc.site_url, acc.list_title, acc.upn_column,
                                self.auth.sync_token_response(self.auth.site_scopes(acc.site_url)),
                                str(self.opts.trust.bundle_file(self.opts.state_dir)), ru=ru, shapes=self.shapes)

    def _graph(self, presence: bool) -> GraphClient:
        """A Graph client of its own for the presence loop (its counters are the cycle's), one for the others."""
        acc = self.account
        key = (acc.client_id.lower(), acc.tenant_id.lower())
        http = new_async_client(self.opts.trust, max_connections=16)
        self._clients.append(http)
        lanes: tuple[httpx.AsyncClient, ...] = ()
        if presence:  # several small pools: see GraphClient.lanes
            lanes = tuple(new_async_client(self.opts.trust, max_connections=8) for _ in range(PRESENCE_LANES))
            self._clients.extend(lanes)
        budget = self._budgets.setdefault(key, RequestBudget(self.opts.presence_limit, self.opts.presence_window,
                                                             headroom=1 / 30))
        directory = self._gates.setdefault(key, RetryAfterGate())  # users, delta, lookups, domains
        return GraphClient(account_id=acc.id, graph_url=acc.graph_url,
                           token=self.auth.token_source(self.auth.graph_scopes()), http=http,
                           budgets={"presence": budget, "directory": directory}, lanes=lanes, shapes=self.shapes)

    def loops(self) -> AccountLoops:
        if self._loops is None:
            acc = self.account
            ru = self._quotas.setdefault((acc.client_id.lower(), acc.tenant_id.lower()),
                                         ResourceUnitBudget(self.opts.sharepoint_ru_per_minute))
            graph = self._graph(presence=False)
            roster = self._roster(graph, ru)
            self._loops = AccountLoops(
                account_id=acc.id, presence_graph=self._graph(presence=True), graph=graph, roster=roster,
                store=self.store, cadence=self.opts.cadence, interval=self.opts.interval,
                columns=self.opts.columns, dry_run=self.opts.dry_run,
                writeback_enabled=self.opts.roster_csv is None, progress=self.opts.progress,
                report_dry_run=self.report_dry_run)
            upload = getattr(roster, "upload", None)  # SharePoint REST or Graph's list route; not a roster CSV
            if acc.reports is not None and upload is not None and not self.opts.dry_run:
                self._loops.reports = ReportsLoop(self._loops.state, acc.reports, upload,
                                                  self.store.url or self.opts.state_dir,
                                                  interval=self.opts.cadence.writeback_interval,
                                                  csv_encoding=self.opts.csv_encoding)
        return self._loops

    def report_dry_run(self, planned: Mapping[int, Mapping[str, str]]) -> None:
        for item_id, values in sorted(planned.items())[:50]:
            log.info("dry-run: account %s item %s would be set to %s", self.account_id, item_id,
                     ", ".join(f"{k}={v!r}" for k, v in values.items()))
        if len(planned) > 50:
            log.info("dry-run: account %s: ... and %d more item(s)", self.account_id, len(planned) - 50)

    async def aclose(self) -> None:
        for http in self._clients:
            await http.aclose()
        self._clients.clear()
        roster = self._loops.roster if self._loops is not None else None
        close = getattr(roster, "close", None)  # SharePointRoster's requests session
        if close is not None:
            close()

    async def reset_loops(self) -> None:
        """Close the loops' clients and forget the loops: the next ``loops()`` builds them from the store again
        (another replica held the account meanwhile). The login stays."""
        await self.aclose()
        self._loops = None
