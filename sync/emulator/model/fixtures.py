"""Reading the tenant fixtures (``fixtures/tenants/*.json``, format in ``fixtures/README.md``) into a World."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from .tenant import App, Domain, ListItem, ServiceAccount, Site, SpList, Tenant, User, World

__all__ = ["default_fixtures_dir", "load_world", "tenant_from_json", "user_from_json"]


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
    """Build a Tenant from one fixture document (format in fixtures/README.md)."""
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


def load_world(fixtures_dir: Path, presence_seed: int = 1, names: list[str] | None = None) -> World:
    """Load every ``*.json`` tenant in ``fixtures_dir`` (answer keys ``*.answers.json`` are skipped)."""
    tenants: dict[str, Tenant] = {}
    for path in sorted(Path(fixtures_dir).glob("*.json")):
        if path.name.endswith(".answers.json"):
            continue
        doc = json.loads(path.read_text(encoding="utf-8"))
        if names and doc["name"] not in names:
            continue
        t = tenant_from_json(doc)
        tenants[t.tenant_id] = t
    if not tenants:
        raise FileNotFoundError(f"no tenant fixtures (*.json) found in {fixtures_dir}")
    return World(tenants=tenants, presence_seed=presence_seed)


def default_fixtures_dir() -> Path:
    """``fixtures/tenants`` of the source checkout this package runs from."""
    return Path(__file__).resolve().parents[3] / "fixtures" / "tenants"
