"""Reading the tenant fixtures into a World.

The two tenants the local tenant serves by default ship inside the package (``sync/emulator/fixtures/*.json``,
format in ``sync/emulator/fixtures/README.md``) and are found through ``importlib.resources``, so an installed
wheel serves them from any folder; ``--fixtures DIR`` serves others (``scripts/gen_tenant.py``, the benchmark).
"""

from __future__ import annotations

import json
import uuid
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from .tenant import App, Domain, ListItem, ServiceAccount, Site, SpList, Tenant, User, World

__all__ = ["FixturesError", "default_fixtures_dir", "load_world", "tenant_from_json", "user_from_json"]

_PACKAGE = __name__.rsplit(".", 2)[0]  # sync.emulator: the fixtures folder sits beside its modules


class FixturesError(Exception):
    """The tenant fixtures cannot be loaded; the message says which folder or file, and why."""


def user_from_json(d: dict[str, Any]) -> User:
    return User(
        id=d["id"].lower(),
        user_principal_name=d["userPrincipalName"],
        display_name=d.get("displayName", ""),
        given_name=d.get("givenName"),
        surname=d.get("surname"),
        mail=d.get("mail"),
        proxy_addresses=list(d.get("proxyAddresses", [])),
        im_addresses=list(d.get("imAddresses", [])),
        account_enabled=bool(d.get("accountEnabled", True)),
        user_type=d.get("userType", "Member"),
        teams_licensed=bool(d.get("teamsLicensed", True)),
        job_title=d.get("jobTitle"),
        department=d.get("department"),
        office_location=d.get("officeLocation"),
        mail_nickname=d.get("mailNickname"),
        utc_offset_minutes=int(d.get("utcOffsetMinutes", 0)),
    )


def tenant_from_json(doc: dict[str, Any]) -> Tenant:
    """Build a Tenant from one fixture document (format in sync/emulator/fixtures/README.md)."""
    domains = [
        Domain(
            id=d["id"],
            is_verified=bool(d.get("isVerified", True)),
            is_default=bool(d.get("isDefault", False)),
            is_initial=bool(d.get("isInitial", False)),
            authentication_type=d.get("authenticationType", "Managed"),
        )
        for d in doc["domains"]
    ]
    apps = [
        App(
            client_id=a["clientId"].lower(),
            display_name=a.get("displayName", a["clientId"]),
            kind=a["kind"],
            client_secret=a.get("clientSecret"),
            secret_id=a.get("secretId"),
            secret_expired=bool(a.get("secretExpired", False)),
            application_permissions=list(a.get("applicationPermissions", [])),
            delegated_permissions=list(a.get("delegatedPermissions", [])),
            admin_consented=bool(a.get("adminConsented", True)),
            allow_public_client_flows=bool(a.get("allowPublicClientFlows", a["kind"] == "public")),
        )
        for a in doc["apps"]
    ]
    accounts = [
        ServiceAccount(upn=s["upn"], password=s["password"], mfa_required=bool(s.get("mfaRequired", False)))
        for s in doc.get("serviceAccounts", [])
    ]
    users = {u.id: u for u in (user_from_json(x) for x in doc["users"])}
    sd = doc["site"]
    site = Site(
        id=sd.get("id") or f"{sd['hostname']},{uuid.uuid5(uuid.NAMESPACE_URL, sd['path'])},"
        f"{uuid.uuid5(uuid.NAMESPACE_DNS, sd['path'])}",
        hostname=sd["hostname"],
        path=sd["path"],
        display_name=sd.get("displayName", sd["path"].rsplit("/", 1)[-1]),
    )
    for ld in sd["lists"]:
        lst = SpList(
            id=ld.get("id") or str(uuid.uuid5(uuid.NAMESPACE_URL, sd["path"] + "/" + ld["title"])),
            title=ld["title"],
            columns=list(ld["columns"]),
            indexed_columns=set(ld.get("indexedColumns", [])),
        )
        for it in ld["items"]:
            item = ListItem(id=int(it["id"]), fields=dict(it["fields"]))
            lst.items[item.id] = item
            lst.next_id = max(lst.next_id, item.id + 1)
        site.lists[lst.title.lower()] = lst
    return Tenant(
        tenant_id=doc["tenantId"].lower(),
        name=doc["name"],
        display_name=doc.get("displayName", doc["name"]),
        domains=domains,
        apps=apps,
        service_accounts=accounts,
        users=users,
        site=site,
        upn_column=doc.get("upnColumn", "UPN"),
    )


def load_world(fixtures_dir: Path | Traversable | None = None, presence_seed: int = 1,
               names: list[str] | None = None) -> World:
    """Load every ``*.json`` tenant in ``fixtures_dir`` (answer keys ``*.answers.json`` are skipped); None: the
    tenants shipped in the package. Raises ``FixturesError`` naming the folder or file and what is wrong."""
    shipped = fixtures_dir is None
    folder = default_fixtures_dir() if fixtures_dir is None else fixtures_dir
    tenants: dict[str, Tenant] = {}
    for entry in _documents(folder, shipped):
        try:
            doc = json.loads(entry.read_text(encoding="utf-8"))
            if names and doc["name"] not in names:
                continue
            t = tenant_from_json(doc)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise FixturesError(f"{_where(folder, entry.name)} is not a readable tenant document "
                                f"({type(exc).__name__}: {exc}); the format: sync/emulator/fixtures/README.md") from exc
        tenants[t.tenant_id] = t
    if not tenants:
        raise FixturesError(f"no fixture for tenant(s) {', '.join(names)} in {_where(folder)}" if names
                            else _none_found(folder, shipped))
    return World(tenants=tenants, presence_seed=presence_seed)


def default_fixtures_dir() -> Traversable:
    """The tenants shipped in the package (``sync/emulator/fixtures``), wherever it is installed."""
    return resources.files(_PACKAGE).joinpath("fixtures")


def _where(folder: Path | Traversable, name: str = "") -> str:
    return str(Path(str(folder), name)) if name else str(folder)


def _documents(folder: Path | Traversable, shipped: bool) -> list[Traversable]:
    """The tenant documents of ``folder``, by name; answer keys left out."""
    try:
        entries = list(folder.iterdir()) if folder.is_dir() else None
    except OSError as exc:
        raise FixturesError(f"cannot list the tenant fixtures folder {_where(folder)}: {exc}") from exc
    if entries is None:
        raise FixturesError(_none_found(folder, shipped) if shipped else
                            f"the tenant fixtures folder {_where(folder)} does not exist (or is not a folder)")
    return sorted((e for e in entries if e.name.endswith(".json") and not e.name.endswith(".answers.json")
                   and e.is_file()), key=lambda e: e.name)


def _none_found(folder: Path | Traversable, shipped: bool) -> str:
    if shipped:
        return (f"this presence-sync installation lacks the tenant fixtures it ships: no tenant document (*.json) "
                f"in {_where(folder)}, so it was installed from a build without its package data. Reinstall it "
                "from a wheel or sdist built from the project (pip install --force-reinstall "
                "presence_sync-VERSION-py3-none-any.whl).")
    return (f"no tenant fixtures in {_where(folder)}: the folder holds no tenant document (*.json other than "
            "*.answers.json)")
