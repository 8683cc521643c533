"""config.xml + .env + environment + command-line flags -> one frozen ``Settings``.

Precedence, highest first: command-line flags (``overrides``) > environment > ``.env`` > config.xml > defaults. The
``.env`` file (python-dotenv) is read into a dict and never written into ``os.environ``, so it cannot override the
real environment. Names read from the environment / ``.env``:

- ``PRESENCE_SYNC_CONFIG`` (config.xml path), ``PRESENCE_SYNC_STATE_DIR``, ``PRESENCE_SYNC_OUT``,
  ``PRESENCE_SYNC_INTERVAL``, ``PRESENCE_SYNC_CA_BUNDLE``, ``PRESENCE_SYNC_LOG_FORMAT``, ``PRESENCE_SYNC_KEY_FILE``,
  ``PRESENCE_SYNC_METRICS_PORT``, ``PRESENCE_SYNC_METRICS_HOST``, ``PRESENCE_SYNC_ALERTS_WEBHOOK``,
  ``PRESENCE_SYNC_ON_NEEDS_HUMAN``;
- for development, plain secrets per account: ``PRESENCE_SYNC_SECRET__<ID>`` (client secret) and
  ``PRESENCE_SYNC_PASSWORD__<ID>`` (password of the Username), ``<ID>`` being the Account Id upper-cased with every
  character outside A-Z and 0-9 replaced by ``_`` (``contoso.com`` -> ``CONTOSO_COM``). They win over the
  Encrypted* attributes, which are then not decrypted.

Default state directory: ``$XDG_STATE_HOME/presence-sync``, else ``~/.local/state/presence-sync``. It is not read
from config.xml, so ``encrypt-secret`` (which takes only ``--state-dir``) always finds the same key. Relative paths in
config.xml (``OutDir``, ``CaBundle``) are relative to the config file's folder.

Decisions: ``enabled="false"`` on MsGraphPresenceSource switches the whole source off, which is reported as the "no
enabled account" error (the accounts are still checked, so every problem shows at once). ``AgentList/@SiteUrl`` is
optional here because ``--roster FILE.csv`` replaces it; commands that read SharePoint call
``Settings.agent_list_problems()``. Validation collects every problem and raises one ``ConfigError``; warnings
(unknown attributes, ...) are returned next to the Settings.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import MISSING, fields
from pathlib import Path

from dotenv import dotenv_values

from ..errors import ConfigError, ConfigProblem
from ..secrets import KEY_FILE_ENV, KeyStore
from .accounts import build_accounts
from .settings import (
    AccountConfig,
    Secret,
    Settings,
    WriteBackColumns,
    csv_encoding_problem,
    default_state_dir,
    webhook_problem,
)
from .xmldoc import Problems, SourceSection, XmlDocument, XmlNode, find_source, parse_xml

__all__ = ["MAX_CONFIG_BYTES", "load_settings"]


# name -> (environment variable, (element, attribute) in config.xml, kind)
_SCALARS: dict[str, tuple[str | None, tuple[str, str] | None, str]] = {
    "state_dir": ("PRESENCE_SYNC_STATE_DIR", None, "path"),
    "key_file": (KEY_FILE_ENV, None, "path"),
    "out_dir": ("PRESENCE_SYNC_OUT", ("MsGraphPresenceSource", "OutDir"), "path"),
    "interval": ("PRESENCE_SYNC_INTERVAL", ("MsGraphPresenceSource", "Interval"), "seconds"),
    "ca_bundle": ("PRESENCE_SYNC_CA_BUNDLE", ("MsGraphPresenceSource", "CaBundle"), "file"),
    "log_format": ("PRESENCE_SYNC_LOG_FORMAT", ("MsGraphPresenceSource", "LogFormat"), "log_format"),
    "domains_refresh": (None, ("MsGraphPresenceSource", "DomainsRefresh"), "seconds"),
    "writeback_interval": (None, ("WriteBack", "Interval"), "seconds"),
    "writeback_quota": (None, ("WriteBack", "ResourceUnitsPerMinute"), "count"),
    "presence_budget_requests": (None, ("PresenceBudget", "Requests"), "count"),
    "presence_budget_window": (None, ("PresenceBudget", "Window"), "seconds"),
    "metrics_port": ("PRESENCE_SYNC_METRICS_PORT", ("MsGraphPresenceSource", "MetricsPort"), "port"),
    "metrics_host": ("PRESENCE_SYNC_METRICS_HOST", ("MsGraphPresenceSource", "MetricsHost"), "text"),
    "alerts_webhook": ("PRESENCE_SYNC_ALERTS_WEBHOOK", ("Alerts", "Webhook"), "webhook"),
    "on_needs_human": ("PRESENCE_SYNC_ON_NEEDS_HUMAN", None, "text"),
    "store": ("PRESENCE_SYNC_STORE", ("Store", "Url"), "store"),
    "lease_ttl": (None, ("Store", "LeaseTtl"), "seconds"),
    "lease_renew": (None, ("Store", "LeaseRenew"), "seconds"),
    "csv_encoding": (None, ("MsGraphPresenceSource", "CsvEncoding"), "csv_encoding"),
}
MAX_CONFIG_BYTES = 1024 * 1024  # config.xml larger than this is refused before parsing

_COLUMNS = {"availability": "Availability", "activity": "Activity",
            "presence_updated": "PresenceUpdated", "upn_status": "UpnStatus"}
_FLAG_ONLY = {"once", "dry_run", "account_filter", "roster_csv", "config_path"}


def _convert(kind: str, raw: object, base: Path | None) -> tuple[object, str]:
    """(value, "") or (None, why it is wrong) for one raw setting."""
    if kind in ("path", "file"):
        path = raw if isinstance(raw, Path) else Path(str(raw).strip()).expanduser()
        if base is not None and not path.is_absolute():
            path = base / path
        if kind == "file" and not path.is_file():
            return None, f"{str(path)!r} is not a readable file."
        return path, ""
    if kind == "column":
        value = str(raw).strip()
        return (value, "") if value else (None, "a column name cannot be empty.")
    if kind in ("text", "webhook"):
        value = str(raw).strip()
        why = "cannot be empty." if not value else webhook_problem(value) if kind == "webhook" else ""
        return (None, why) if why else (value, "")
    if kind == "store":
        value = str(raw.reveal() if isinstance(raw, Secret) else raw).strip()
        if value.split("://", 1)[0].lower() in ("postgresql", "postgres") and "://" in value:
            return Secret(value), ""
        return None, ("is not a PostgreSQL URL (postgresql://USER@HOST:PORT/DATABASE; leave it out for the "
                      "SQLite store in the state directory).")
    if kind == "port":
        port = str(raw).strip()
        ok = port.isascii() and port.isdigit() and 1 <= int(port) <= 65535
        return (int(port), "") if ok else (None, f"{raw!r} is not a TCP port (1-65535).")
    if kind == "csv_encoding":
        why = csv_encoding_problem(str(raw))
        return (None, why) if why else (str(raw).strip().lower(), "")
    if kind == "log_format":
        value = str(raw).strip().lower()
        return (value, "") if value in ("text", "json") else (None, f"{raw!r} is not text or json.")
    try:
        number = float(str(raw).strip()) if kind == "seconds" else int(str(raw).strip())
    except ValueError:
        return None, f"{raw!r} is not a {'number of seconds' if kind == 'seconds' else 'whole number'}."
    return (number, "") if number > 0 else (None, f"{raw!r} must be greater than 0.")


class _Layers:
    """The four sources of a value, asked in precedence order, each able to say where a bad value came from."""

    def __init__(self, overrides: Mapping[str, object], env: Mapping[str, str], dot: Mapping[str, str],
                 dot_label: str, doc: XmlDocument | None, section: SourceSection | None, problems: Problems,
                 config_dir: Path | None) -> None:
        self.overrides, self.env, self.dot, self.dot_label = overrides, env, dot, dot_label
        self.doc, self.section, self.problems, self.config_dir = doc, section, problems, config_dir
        self.errors: list[ConfigProblem] = []

    def _xml(self, element: str) -> XmlNode | None:
        if self.section is None:
            return None
        if element == "MsGraphPresenceSource":
            return self.section.node
        return next((c for c in self.section.node.children if c.tag == element), None)

    def get(self, name: str, env_var: str | None, xml: tuple[str, str] | None, kind: str, default: object) -> object:
        candidates: list[tuple[object, Path | None, ConfigProblem]] = []
        if self.overrides.get(name) is not None:
            where = ConfigProblem("command line", None, "--" + name.replace("_", "-"), "")
            candidates.append((self.overrides[name], None, where))
        for mapping, label in ((self.env, "environment"), (self.dot, self.dot_label)):
            if env_var and mapping.get(env_var, "").strip():
                candidates.append((mapping[env_var], None, ConfigProblem(label, None, env_var, "")))
        node = self._xml(xml[0]) if xml else None
        if xml and node is not None and xml[1] in node.attrib and self.doc is not None:
            where = ConfigProblem(self.problems.file, self.doc.attr_line(node, xml[1]), f"{xml[0]}/@{xml[1]}", "")
            candidates.append((node.attrib[xml[1]], self.config_dir, where))
        if not candidates:
            return default
        raw, base, where = candidates[0]
        value, why = _convert(kind, raw, base)
        if why:
            self.errors.append(ConfigProblem(where.file, where.line, where.attribute, why))
            return default
        return value


def _default(cls: type, name: str) -> object:
    """A dataclass field's plain default (slots dataclasses keep none on the class); None for factories."""
    default = next(f.default for f in fields(cls) if f.name == name)
    return None if default is MISSING else default


def _read_dotenv(path: Path | None) -> tuple[dict[str, str], str]:
    path = path if path is not None else Path(".env")
    if not path.is_file():
        return {}, str(path)
    return {k: v for k, v in dotenv_values(path).items() if v is not None}, str(path)


def load_settings(
    config_path: Path | None,
    overrides: Mapping[str, object],
    env: Mapping[str, str] | None = None,
    dotenv_path: Path | None = None,
) -> tuple[Settings, list[ConfigProblem]]:
    """Resolve and validate everything; raise ``ConfigError`` listing every problem, else return (Settings, warnings).

    ``overrides`` are the already parsed command-line flags (``None`` values mean "not given"); ``env`` defaults to
    ``os.environ``; ``dotenv_path`` defaults to ``./.env`` when it exists. The config file is ``config_path``, else
    ``overrides["config_path"]``, else ``PRESENCE_SYNC_CONFIG`` (environment, then .env), else ``./config.xml``.
    """
    known = set(_SCALARS) | _FLAG_ONLY | {f"column_{c}" for c in _COLUMNS}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown setting override(s): {', '.join(sorted(unknown))}")
    real_env = dict(os.environ if env is None else env)
    dot, dot_label = _read_dotenv(dotenv_path)
    merged = {**dot, **real_env}
    errors: list[ConfigProblem] = []
    warnings: list[ConfigProblem] = []

    raw_path = config_path or overrides.get("config_path") or merged.get("PRESENCE_SYNC_CONFIG", "").strip() or None
    path = Path(str(raw_path)).expanduser() if raw_path else None
    if path is None and Path("config.xml").is_file():
        path = Path("config.xml")
    problems = Problems(str(path) if path else "config.xml")
    doc = section = None
    if path is None:
        errors.append(ConfigProblem("command line", None, "--config",
                                    "no configuration file given and no ./config.xml.",
                                    "Pass --config FILE or set PRESENCE_SYNC_CONFIG."))
    else:
        try:
            with path.open("rb") as fh:
                source = fh.read(MAX_CONFIG_BYTES + 1)  # never more: a huge file is refused unread
        except OSError as exc:
            problems.error(None, "", f"cannot be read: {exc.strerror}.", "Check the path given to --config (or in PRESENCE_SYNC_CONFIG).")
        else:
            if len(source) > MAX_CONFIG_BYTES:
                problems.error(None, "", f"is larger than {MAX_CONFIG_BYTES // 1024 ** 2} MB; a presence-sync "
                               "configuration is a few kilobytes.",
                               "Check that --config names the right file (config.xml, not a log or an export).")
            else:
                doc = parse_xml(source, problems)
                section = find_source(doc, problems) if doc else None

    layers = _Layers(overrides, real_env, dot, dot_label, doc, section, problems, path.parent if path else None)
    values = {name: layers.get(name, var, xml, kind, _default(Settings, name))
              for name, (var, xml, kind) in _SCALARS.items()}
    values["state_dir"] = values["state_dir"] or default_state_dir(merged)
    columns = WriteBackColumns(**{
        attr: str(layers.get(f"column_{attr}", None, ("WriteBack", xml_name), "column",
                             _default(WriteBackColumns, attr)))
        for attr, xml_name in _COLUMNS.items()
    })
    accounts: tuple[AccountConfig, ...] = ()
    if doc is not None and section is not None:
        key_file = values["key_file"]
        keys = KeyStore(Path(str(values["state_dir"])), {KEY_FILE_ENV: str(key_file)} if key_file else {})
        accounts = build_accounts(doc, section, problems, merged, keys)
        _check_enabled(doc, section, accounts, problems)
    settings = Settings(
        config_path=path, accounts=accounts, writeback_columns=columns,
        source_enabled=bool(section and section.enabled),
        once=bool(overrides.get("once") or False), dry_run=bool(overrides.get("dry_run") or False),
        account_filter=_account_filter(overrides.get("account_filter")),
        roster_csv=Path(str(overrides["roster_csv"])) if overrides.get("roster_csv") else None,
        **values,  # type: ignore[arg-type]
    )
    problems.errors.sort(key=lambda pr: pr.line or 0)
    errors += layers.errors + problems.errors + _filter_problems(settings, doc is not None and section is not None)
    if settings.lease_renew * 3 > settings.lease_ttl:
        errors.append(ConfigProblem(problems.file, None, "Store/@LeaseRenew",
                                    f"renewing every {settings.lease_renew:g} s is fewer than three renewals per "
                                    f"lease TTL of {settings.lease_ttl:g} s: a replica could lose its lease while "
                                    "it still writes.", "Make Store/@LeaseRenew at most a third of @LeaseTtl."))
    warnings += problems.warnings
    if errors:
        raise ConfigError(errors)
    return settings, warnings


def _account_filter(raw: object) -> tuple[str, ...]:
    if raw is None:
        return ()
    items = raw.split(",") if isinstance(raw, str) else [str(x) for x in raw]  # type: ignore[attr-defined]
    return tuple(i.strip() for i in items if i.strip())


def _check_enabled(doc: XmlDocument, section: SourceSection, accounts: tuple[AccountConfig, ...],
                   problems: Problems) -> None:
    """The "no enabled account" rule: the source switched on, and at least one Account enabled."""
    node = section.node
    if not section.enabled:
        problems.error(doc.attr_line(node, "enabled"), "MsGraphPresenceSource/@enabled",
                       'the presence source is switched off (enabled="false"), so no account is enabled.',
                       'Set enabled="true" to collect presence.')
    elif not section.accounts:
        problems.error(node.line, "Accounts", "no <Account> element, so no account is enabled.",
                       "Add <Accounts><Account Id=... ClientId=... TenantId=.../></Accounts> "
                       "(see config/config.example.xml).")
    elif accounts and not any(a.enabled for a in accounts):
        problems.error(node.line, "Account/@Enabled", 'every Account has Enabled="false", so none is enabled.',
                       'Remove Enabled="false" from at least one Account.')


def _filter_problems(settings: Settings, parsed: bool) -> list[ConfigProblem]:
    """``--account`` names must exist and be enabled."""
    if not parsed or not settings.account_filter:
        return []
    by_id = {a.id.casefold(): a for a in settings.accounts}
    known = ", ".join(a.id for a in settings.accounts) or "none"
    out = []
    for name in settings.account_filter:
        acc = by_id.get(name.casefold())
        if acc is None:
            out.append(ConfigProblem("command line", None, "--account", f"no Account with Id {name!r}.",
                                     f"Known Ids: {known}."))
        elif not acc.enabled:
            out.append(ConfigProblem(acc.source_file, acc.source_line, "Account/@Enabled",
                                     f"account {name!r} is disabled, but --account selects it.",
                                     'Remove Enabled="false" or choose another account.'))
    return out
