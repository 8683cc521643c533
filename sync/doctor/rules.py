"""Pure rules of ``presence-sync doctor``: check rows, the permissions each mode needs, token claims, budgets.

No I/O here: the checks (``checks.py``) feed plain values in and get rows and fixes back.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import EXIT_NEEDS_HUMAN, EXIT_OK

__all__ = [
    "CHECKS",
    "FAIL",
    "OK",
    "SKIPPED",
    "WARN",
    "TITLES",
    "AccountReport",
    "Budget",
    "Need",
    "Row",
    "admin_consent_url",
    "budget_row",
    "exit_code",
    "granted_from_claims",
    "missing_permissions",
    "needs_for",
    "permission_fix",
    "shown_missing",
    "token_claims",
]

OK, WARN, FAIL, SKIPPED = "ok", "warn", "fail", "skipped"

# The rows of every account, in order: (key, title).
CHECKS: tuple[tuple[str, str], ...] = (
    ("reachable", "authority and Graph reachable"),
    ("credential", "credential works"),
    ("permissions", "permissions in the token"),
    ("domains", "domains readable"),
    ("agent_list", "site and list found"),
    ("upn_column", "UPN column found"),
    ("writeback", "write-back columns writable"),
    ("presence", "one presence call answers"),
    ("shapes", "request shapes the tenant accepts"),
    ("budget", "budget headroom"),
)
TITLES = dict(CHECKS)


@dataclass(frozen=True)
class Row:
    """One check of one account: status ok / warn / fail / skipped, what was seen, and the fix when not ok."""

    check: str
    status: str
    detail: str
    fix: str = ""

    @property
    def title(self) -> str:
        return TITLES.get(self.check, self.check)


@dataclass
class AccountReport:
    account_id: str
    tenant_id: str
    mode: str  # secret | password | device
    rows: list[Row] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account_id, "tenant_id": self.tenant_id, "mode": self.mode,
                "checks": [{**asdict(r), "title": r.title} for r in self.rows]}


def exit_code(reports: Iterable[AccountReport]) -> int:
    """0 when no row failed (warnings allowed), 3 when any did: a person has to act."""
    return EXIT_NEEDS_HUMAN if any(r.status == FAIL for rep in reports for r in rep.rows) else EXIT_OK


# --- permissions ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Need:
    """One access the job needs; ``name`` is the permission to grant, ``any_of`` every permission that grants it."""

    key: str  # presence | users | domains | list_read | list_write
    name: str
    any_of: tuple[str, ...]
    why: str


_PRESENCE = ("Presence.Read.All", "Presence.ReadWrite.All")
_DIRECTORY = ("Directory.Read.All", "Directory.ReadWrite.All")
_SITES_WRITE = ("Sites.ReadWrite.All", "Sites.Manage.All", "Sites.FullControl.All", "Sites.Selected")
_SITES_READ = ("Sites.Read.All", *_SITES_WRITE)


def needs_for(mode: str, writeback: bool) -> list[Need]:
    """What an account's mode needs (README "Permissions"; any permission that grants the access counts)."""
    app = mode == "secret"
    out = [
        Need("presence", "Presence.Read.All", _PRESENCE, "presence"),
        Need("users", "User.Read.All" if app else "User.ReadBasic.All",
             ("User.Read.All", "User.ReadWrite.All", *_DIRECTORY) if app
             else ("User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", *_DIRECTORY), "the directory"),
        Need("domains", "Domain.Read.All" if app else "Directory.Read.All",
             ("Domain.Read.All", "Domain.ReadWrite.All", *_DIRECTORY), "the tenant's domains"),
        Need("list_read", "Sites.Read.All", _SITES_READ, "reading the Agent list"),
    ]
    if writeback:
        out.append(Need("list_write", "Sites.ReadWrite.All", _SITES_WRITE, "writing back to the Agent list"))
    return out


def missing_permissions(granted: Iterable[str], needs: Iterable[Need]) -> list[Need]:
    """The needs none of ``granted`` covers (case-insensitive)."""
    have = {g.casefold() for g in granted}
    return [n for n in needs if not any(p.casefold() in have for p in n.any_of)]


def shown_missing(missing: Iterable[Need]) -> list[Need]:
    """What to ask for: list write (Sites.ReadWrite.All) covers list read, so both missing name only the first."""
    out = list(missing)
    if any(n.key == "list_write" for n in out):
        out = [n for n in out if n.key != "list_read"]
    return out


def admin_consent_url(authority_host: str, tenant_id: str, client_id: str) -> str:
    return f"{authority_host.rstrip('/')}/{tenant_id}/adminconsent?client_id={client_id}"


def permission_fix(mode: str, missing: Iterable[Need], consent_url: str) -> str:
    """'missing application permission Presence.Read.All: grant it ...' for every missing need."""
    kind = "application" if mode == "secret" else "delegated"
    names = [n.name + (" (or Sites.Selected with write access to the site)" if n.key == "list_write" else "")
             for n in missing]
    if not names:
        return ""
    them = "it" if len(names) == 1 else "them"
    plural = "" if len(names) == 1 else "s"
    return (f"missing {kind} permission{plural} {', '.join(names)}: grant {them} in the app registration "
            f"(API permissions > Add a permission > Microsoft Graph > {kind.capitalize()} permissions) and give "
            f"admin consent: {consent_url}")


def token_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT access token, decoded WITHOUT verifying it (only to read roles / scp); None when the
    token is not a readable JWT (opaque tokens, encrypted tokens)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload.encode()))
    except (ValueError, binascii.Error):
        return None
    return claims if isinstance(claims, dict) else None


def granted_from_claims(claims: Mapping[str, Any]) -> list[str]:
    """``roles`` (application tokens) and ``scp`` (delegated tokens, space-separated)."""
    roles = claims.get("roles") or []
    scp = str(claims.get("scp") or "").split()
    return [str(r) for r in roles if isinstance(r, str)] + scp


# --- budgets ----------------------------------------------------------------------------------------------------

PRESENCE_IDS_PER_CALL = 650
CHANGES_PER_AGENT_PER_MINUTE = 1 / 9  # a typical agent changes state about every 9 minutes


@dataclass(frozen=True)
class Budget:
    """The figures the budget row is computed from (one app and tenant's accounts taken together)."""

    agents: int  # this account's agents
    shared_agents: int  # every account on the same app and tenant, this one included
    shared_accounts: int
    interval: float
    presence_limit: int
    presence_window: float
    writeback_interval: float
    ru_per_minute: int


def budget_row(b: Budget) -> Row:
    """Presence calls per window against Graph's limit, SharePoint RU per minute against the quota."""
    calls_per_tick = max(1, math.ceil(b.shared_agents / PRESENCE_IDS_PER_CALL)) if b.shared_agents else 0
    need = calls_per_tick * b.presence_window / b.interval
    pace = max(1, int(b.presence_limit * (1 - 1 / 30)))  # the job paces a little under the limit
    window = f"{b.presence_window:g} s"
    who = (f"{b.shared_agents:,} agents of {b.shared_accounts} accounts on this app and tenant"
           if b.shared_accounts > 1 else f"{b.agents:,} agents")
    presence = (f"presence: {who} need {need:,.0f} calls per {window} at --interval {b.interval:g} "
                f"(limit {b.presence_limit:,}, the job paces at {pace:,})")
    pages = math.ceil(b.shared_agents / 999) if b.shared_agents else 0
    steady = b.shared_agents * CHANGES_PER_AGENT_PER_MINUTE * 2 + pages * 2 * 60 / b.writeback_interval
    fill_minutes = (b.shared_agents * 2) / (b.ru_per_minute * 0.95) if b.shared_agents else 0.0
    sharepoint = (f"SharePoint: about {steady:,.0f} RU per minute in steady state of {b.ru_per_minute:,} "
                  f"(WriteBack/@ResourceUnitsPerMinute); a first fill of every item takes {fill_minutes:.1f} min")
    detail = f"{presence}; {sharepoint}"
    if need > b.presence_limit:
        least = math.ceil(calls_per_tick * b.presence_window / pace * 10) / 10
        return Row("budget", FAIL, detail,
                   f"Graph allows {b.presence_limit:,} presence calls per {window} per app and tenant: raise "
                   f"--interval (MsGraphPresenceSource/@Interval) to at least {least:g} s, or split the agents "
                   "over more app registrations")
    if steady > b.ru_per_minute:
        return Row("budget", FAIL, detail,
                   "write-back would outrun SharePoint's quota and the Agent list would fall ever further behind: "
                   "raise WriteBack/@ResourceUnitsPerMinute if the tenant's licence band allows it (2,500 / "
                   "3,750 / 5,000 / 6,250), raise WriteBack/@Interval, or split the list")
    if need > pace or fill_minutes * 60 > 2 * b.writeback_interval:
        why = ("presence calls exceed the job's pace, so ticks will wait for the budget" if need > pace
               else "the first write-back fill spans several write-back rounds (later rounds write changes only)")
        return Row("budget", WARN, detail, f"{why}; fine for a first run, consider a longer --interval or a "
                                           "higher WriteBack/@ResourceUnitsPerMinute")
    return Row("budget", OK, detail)
