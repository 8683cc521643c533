"""The resolved configuration as plain frozen data: Settings, AccountConfig, Secret, the clouds table.

Pure data (built by ``sync.config.load_settings``); no I/O beyond reading the environment for a default path.
"""

from __future__ import annotations

import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from ..errors import ConfigProblem

__all__ = [
    "CSV_ENCODINGS",
    "DEFAULT_AUTHORITY_HOST",
    "DEFAULT_GRAPH_URL",
    "NATIONAL_CLOUDS",
    "AccountConfig",
    "ReportsTarget",
    "Cloud",
    "Secret",
    "Settings",
    "WriteBackColumns",
    "csv_encoding_problem",
    "default_state_dir",
    "env_name",
    "webhook_problem",
]

DEFAULT_AUTHORITY_HOST = "https://login.microsoftonline.com"
DEFAULT_GRAPH_URL = "https://graph.microsoft.com"
# The encodings of the CSV files the job writes: UTF-8 without a byte-order mark, or with one (Excel on Windows
# reads a CSV without it in the machine's ANSI code page, so accented names turn into mojibake).
CSV_ENCODINGS = ("utf-8", "utf-8-sig")


@dataclass(frozen=True, slots=True)
class Cloud:
    """A Microsoft cloud: where to log in and where Graph lives."""

    name: str
    authority_host: str
    graph_url: str
    presence_available: bool = True


# For the README and for AuthorityHost / GraphUrl. Presence (/communications/getPresencesByUserId) is not offered
# by the China cloud operated by 21Vianet.
NATIONAL_CLOUDS: dict[str, Cloud] = {
    "global": Cloud("Global", "https://login.microsoftonline.com", "https://graph.microsoft.com"),
    "usgov-l4": Cloud("US Government L4 (GCC High)", "https://login.microsoftonline.us", "https://graph.microsoft.us"),
    "usgov-l5": Cloud("US Government L5 (DoD)", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
    "china": Cloud("China (operated by 21Vianet)", "https://login.chinacloudapi.cn",
                   "https://microsoftgraph.chinacloudapi.cn", presence_available=False),
}


class Secret:
    """A secret value that prints as ``***`` (repr, str, f-strings, logs); ``reveal()`` gives the value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "***"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((Secret, self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True, slots=True)
class AccountConfig:
    """One tenant to collect: app registration, how to authenticate, where its Agent list lives."""

    id: str
    client_id: str
    tenant_id: str
    auth: str  # "secret" (client credentials) | "password" (username/password) | "device" (device code)
    secret: Secret | None = None
    username: str | None = None
    password: Secret | None = None
    authority_host: str = DEFAULT_AUTHORITY_HOST
    graph_url: str = DEFAULT_GRAPH_URL
    site_url: str | None = None
    list_title: str = "Agents"
    upn_column: str = "UPN"
    enabled: bool = True
    secret_expires: date | None = None  # Account/@ClientSecretExpires: alerts 14 days ahead, metric
    alerts_webhook: str | None = None  # Account/Alerts/@Webhook (wins over the source-wide one)
    reports: ReportsTarget | None = None  # Account/Reports: validation.csv and report.html into a library
    source_file: str = field(default="", compare=False)
    source_line: int | None = field(default=None, compare=False)

    @property
    def authority(self) -> str:
        """The MSAL authority URL (host + tenant)."""
        return f"{self.authority_host}/{self.tenant_id}"

    @property
    def mode(self) -> str:
        """Alias of ``auth``."""
        return self.auth

    def secret_value(self) -> str | None:
        """The plain client secret, for the token provider only."""
        return self.secret.reveal() if self.secret is not None else None

    def password_value(self) -> str | None:
        """The plain password, for the token provider only."""
        return self.password.reveal() if self.password is not None else None


@dataclass(frozen=True, slots=True)
class ReportsTarget:
    """Where an account's validation.csv and report.html go: a document library of the Agent list's site."""

    library: str = "Shared Documents"  # its URL name (or its title, e.g. "Documents")
    folder: str = "presence-sync"  # inside the library; created when missing


@dataclass(frozen=True, slots=True)
class WriteBackColumns:
    """Agent list columns the presence is written back to (internal names)."""

    availability: str = "Availability"
    activity: str = "Activity"
    presence_updated: str = "PresenceUpdated"
    upn_status: str = "UpnStatus"


def default_state_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/presence-sync``, else ``~/.local/state/presence-sync``."""
    env = os.environ if env is None else env
    base = env.get("XDG_STATE_HOME", "").strip()
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return (Path(base).expanduser() if base else home / ".local" / "state") / "presence-sync"


def webhook_problem(url: str) -> str:
    """Why ``url`` cannot take alerts ("" when it can): https, or plain http to this machine only."""
    from urllib.parse import urlsplit

    parts = urlsplit(url.strip())
    if parts.scheme == "https" and parts.hostname:
        return ""
    if parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1"):
        return ""
    return f"{url!r} is not an https URL (plain http is accepted only for 127.0.0.1 / localhost)."


def csv_encoding_problem(value: str) -> str:
    """Why ``value`` is no CSV encoding of ours ("" when it is one; compare lower-cased)."""
    if value.strip().lower() in CSV_ENCODINGS:
        return ""
    return (f"{value!r} is not a CSV encoding presence-sync writes: use utf-8 (the default) or utf-8-sig "
            "(UTF-8 with a byte-order mark, for Excel).")


def env_name(account_id: str) -> str:
    """The ``<ID>`` part of ``PRESENCE_SYNC_SECRET__<ID>`` for an Account Id."""
    return re.sub(r"[^A-Z0-9]", "_", account_id.upper())


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything one run needs, resolved and validated; secrets are ``Secret`` and never print."""

    config_path: Path | None = None
    state_dir: Path = field(default_factory=default_state_dir)
    key_file: Path | None = None  # PRESENCE_SYNC_KEY_FILE (environment or .env); None: <state_dir>/secret.key
    out_dir: Path = Path("out")
    interval: float = 5.0
    once: bool = False
    dry_run: bool = False
    log_format: str = "text"
    account_filter: tuple[str, ...] = ()
    ca_bundle: Path | None = None
    roster_csv: Path | None = None
    writeback_interval: float = 60.0
    # SharePoint's quota per app and tenant, in resource units per minute: 1,250 up to 1,000 licences, then
    # 2,500 / 3,750 / 5,000 / 6,250 by licence band. An item update costs 2.
    writeback_quota: int = 1250
    domains_refresh: float = 300.0
    presence_budget_requests: int = 1500
    presence_budget_window: float = 30.0
    writeback_columns: WriteBackColumns = WriteBackColumns()
    source_enabled: bool = True
    accounts: tuple[AccountConfig, ...] = ()
    metrics_port: int | None = None  # run --metrics-port / MsGraphPresenceSource/@MetricsPort: off when None
    metrics_host: str = "127.0.0.1"
    alerts_webhook: str | None = None  # MsGraphPresenceSource/Alerts/@Webhook: every account's, unless its own
    on_needs_human: str | None = None  # run --on-needs-human CMD (split like a shell would, never run by one)
    # run --store / PRESENCE_SYNC_STORE / MsGraphPresenceSource/Store/@Url: a postgresql:// URL that several
    # replicas share (it may hold a password, hence Secret); None: presence-sync.sqlite in the state directory.
    store: Secret | None = None
    lease_ttl: float = 6.0  # Store/@LeaseTtl: seconds a replica's lease on an account lives without renewal
    lease_renew: float = 2.0  # Store/@LeaseRenew: seconds between renewals (at least three per TTL)
    csv_encoding: str = "utf-8"  # MsGraphPresenceSource/@CsvEncoding, --csv-encoding: one of CSV_ENCODINGS

    @property
    def store_location(self) -> str | Path:
        """Where the store lives: the PostgreSQL URL (with its password), or the state directory's SQLite file."""
        return self.store.reveal() if self.store is not None else self.state_dir / "presence-sync.sqlite"

    @property
    def active_accounts(self) -> tuple[AccountConfig, ...]:
        """Enabled accounts, narrowed by ``--account`` when given."""
        wanted = {a.casefold() for a in self.account_filter}
        return tuple(a for a in self.accounts
                     if a.enabled and self.source_enabled and (not wanted or a.id.casefold() in wanted))

    def agent_list_problems(self) -> list[ConfigProblem]:
        """Active accounts without ``AgentList/@SiteUrl``: an error unless a roster CSV replaces SharePoint."""
        if self.roster_csv is not None:
            return []
        return [ConfigProblem(a.source_file, a.source_line, "AgentList/@SiteUrl",
                              f"account {a.id!r} has no Agent list site.",
                              'Add <AgentList SiteUrl="https://<tenant>.sharepoint.com/sites/<site>"/> inside '
                              "the Account, or pass --roster FILE.csv.")
                for a in self.active_accounts if not a.site_url]
