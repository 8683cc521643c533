#!/usr/bin/env python3
"""Build the hand-made fixture tenants (contoso, fabrikam) and their Agent-list answer keys.

Run from the repository root: ``python scripts/make_fixtures.py`` (writes sync/emulator/fixtures/*.json).
Deterministic: running it twice gives byte-identical files.

The directory is partly hand-written (the people the defects point at) and partly filled with
ordinary employees from fixed name lists. The Agent list is built from the hand-written defect rows
below, in order, with clean rows spread between them. Every defect row carries its expected answer,
written by applying sync/emulator/fixtures/README.md's rules (the UPN rules) by hand; the script only derives
status/severity from the codes and checks the key for internal consistency (duplicates only on later
items, suggestions exist in the directory). It never validates a UPN itself.
"""

from __future__ import annotations

import json
import random
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))

from fixture_people import (  # noqa: E402
    CONTOSO_ROWS,
    CONTOSO_SPECIAL,
    FABRIKAM_ROWS,
    FABRIKAM_SPECIAL,
    FIRST_NAMES,
    LAST_NAMES,
    OFFICES,
    ROLES,
    TEAMS,
)

ERROR_CODES = {"EMPTY", "MULTIPLE", "SYNTAX", "CONFUSABLE", "DISPLAY_NAME", "UNKNOWN_DOMAIN", "UNVERIFIED_DOMAIN",
               "NOT_FOUND"}
CODE_ORDER = ["EMPTY", "WHITESPACE", "UNICODE", "QUOTED", "ANGLE_ADDRESS", "PREFIX", "REPEATED_PREFIX",
              "URL_ENCODED", "TRAILING_DOT", "MULTIPLE", "SYNTAX", "CONFUSABLE", "DISPLAY_NAME", "UNKNOWN_DOMAIN",
              "UNVERIFIED_DOMAIN", "GUEST", "NOT_UPN", "NOT_FOUND", "DISABLED", "DUPLICATE"]
NS = uuid.UUID("5d2f5b4e-8c1a-4f3e-9b7d-2a6c0e1f3b5a")  # namespace of every fixture GUID


def guid(*parts: str) -> str:
    return str(uuid.uuid5(NS, ":".join(parts)))


def make_user(tenant: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A full directory user from a short spec (defaults: mail = UPN, SIP = UPN)."""
    upn = spec["upn"]
    guest = spec.get("guest", False)
    mail = spec.get("mail", upn)
    sip = spec.get("sip", None if guest else upn)
    proxies = spec.get("proxies")
    if proxies is None:
        proxies = [f"SMTP:{mail}"] + [f"smtp:{a}" for a in spec.get("aliases", [])]
        if sip:
            proxies.append(f"SIP:{sip}")
    office = spec.get("office", "Redmond")
    dept = spec.get("dept", "Customer Service")
    return {
        "id": guid(tenant, "user", upn.lower()),
        "userPrincipalName": upn,
        "displayName": spec["name"],
        "givenName": spec.get("given", spec["name"].split(" ")[0]),
        "surname": spec.get("surname", spec["name"].split(" ")[-1]),
        "mail": mail,
        "proxyAddresses": proxies,
        "imAddresses": [sip] if sip else [],
        "accountEnabled": spec.get("enabled", True),
        "userType": "Guest" if guest else "Member",
        "teamsLicensed": spec.get("teams", True),
        "jobTitle": spec.get("title", ROLES[dept][0]),
        "department": dept,
        "officeLocation": office,
        "mailNickname": spec.get("nick", upn.split("@")[0]),
        "utcOffsetMinutes": OFFICES[office],
    }


def regular_users(tenant: str, domains: list[tuple[str, int]], count: int, seed: int,
                  taken: set[str]) -> list[dict[str, Any]]:
    """Ordinary employees: unique first.last local parts, varied offices, departments and titles."""
    rng = random.Random(seed)
    pairs = [(f, s) for f in FIRST_NAMES for s in LAST_NAMES]
    rng.shuffle(pairs)
    offices = list(OFFICES)
    offices.remove("External")
    depts = list(ROLES)
    out: list[dict[str, Any]] = []
    for first, last in pairs:
        local = f"{first}.{last}".lower().replace("'", "")
        name = f"{first} {last}"
        if local in taken or name.lower() in taken:
            continue
        taken.update({local, name.lower()})
        office = rng.choice(offices)
        domain = rng.choices([d for d, _ in domains], weights=[w for _, w in domains])[0]
        if office in ("London", "Dublin") and any(d.endswith(".co.uk") for d, _ in domains):
            domain = next(d for d, _ in domains if d.endswith(".co.uk"))
        dept = rng.choice(depts)
        spec = {"name": name, "upn": f"{local}@{domain}", "office": office, "dept": dept,
                "title": rng.choice(ROLES[dept]), "teams": rng.random() > 0.04, "enabled": rng.random() > 0.03}
        out.append(make_user(tenant, spec))
        if len(out) == count:
            break
    return out


def status_of(codes: list[str]) -> tuple[str, str]:
    if any(c in ERROR_CODES for c in codes):
        return "invalid", "error"
    if codes:
        return "fixed", "warning"
    return "ok", ""


def build_list(tenant: str, rows: list[tuple[Any, ...]], clean_users: list[dict[str, Any]],
               total: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Spread clean rows between the defect rows; fill templates; return (list items, answer rows)."""
    template_count = sum(1 for r in rows if isinstance(r[0], str) and "{" in r[0])
    n_clean = total - len(rows)
    pool = iter(clean_users)
    # Enabled, licensed regulars serve the templates and the clean rows; a few unlicensed ones stay clean.
    assert n_clean + template_count <= len(clean_users), "not enough regular users"
    # defect rows at evenly spaced positions after three clean rows, clean rows everywhere else
    slots = {3 + (j * (total - 3)) // len(rows): rows[j] for j in range(len(rows))}
    order: list[Any] = [slots.get(k) for k in range(total)]
    items: list[dict[str, Any]] = []
    answers: list[dict[str, Any]] = []
    for item_id, row in enumerate(order, start=1):
        if row is None:
            u = next(pool)
            raw, kind, codes, norm, sugg, title = u["userPrincipalName"], "clean", [], u["userPrincipalName"], "", None
            title, candidates, detail = u["displayName"], "", ""
        else:
            raw, kind, codes, norm, sugg, title = row[:6]
            candidates, detail = (*row[6:], "", "")[:2]
            if isinstance(raw, str) and "{" in raw:
                u = next(pool)
                upn = u["userPrincipalName"]
                loc, dom = upn.split("@")
                variant = f"{loc.title()}@{dom.upper()}" if kind == "case" else upn
                raw = raw.replace("{U}", variant).replace("{u%40}", upn.replace("@", "%40")).replace("{u}", upn)
                raw = raw.replace("{n}", u["displayName"])
                norm = norm.replace("{u}", upn)
                title = title or u["displayName"]
        status, severity = status_of(codes)
        assert codes == sorted(codes, key=CODE_ORDER.index), (item_id, codes)
        assert (status == "invalid") == (norm == ""), (item_id, raw)
        fields = {"Title": title or "", "UPN": raw, "Team": TEAMS[(item_id * 7) % len(TEAMS)]}
        items.append({"id": item_id, "fields": fields})
        answers.append({"item_id": item_id, "raw": raw, "normalized_upn": norm.lower(), "status": status,
                        "codes": list(codes), "severity": severity, "suggestion": sugg.lower(),
                        "candidates": candidates, "detail": detail, "kind": kind})
    return items, answers


def check_key(answers: list[dict[str, Any]], users: list[dict[str, Any]]) -> None:
    """Internal consistency of a key: DUPLICATE exactly on later resolutions; every UPN it names exists."""
    upns = {u["userPrincipalName"].lower() for u in users}
    seen: set[str] = set()
    for a in answers:
        for v in (a["normalized_upn"], a["suggestion"]):
            assert v == "" or v in upns, (a["item_id"], v)
        if a["status"] == "invalid":
            continue
        dup = a["normalized_upn"] in seen
        assert dup == ("DUPLICATE" in a["codes"]), (a["item_id"], a["raw"])
        seen.add(a["normalized_upn"])


APP_PERMS = ["Presence.Read.All", "User.Read.All", "Domain.Read.All", "Sites.ReadWrite.All"]
DELEGATED = ["User.ReadBasic.All", "Directory.Read.All", "Presence.Read.All", "Sites.ReadWrite.All"]


def contoso() -> tuple[dict[str, Any], dict[str, Any]]:
    apps = [
        {"clientId": "11111111-2222-4333-8444-555555555555", "displayName": "presence-sync (application)",
         "kind": "confidential", "clientSecret": "contoso-app-secret-value",
         "secretId": "a1b2c3d4-0000-4000-8000-00000000a001", "secretExpired": False,
         "applicationPermissions": APP_PERMS, "delegatedPermissions": [], "adminConsented": True,
         "allowPublicClientFlows": False},
        {"clientId": "11111111-2222-4333-8444-555555555556", "displayName": "expired secret app",
         "kind": "confidential", "clientSecret": "contoso-expired-secret",
         "secretId": "a1b2c3d4-0000-4000-8000-00000000a002", "secretExpired": True,
         "applicationPermissions": APP_PERMS, "delegatedPermissions": [], "adminConsented": True,
         "allowPublicClientFlows": False},
        {"clientId": "11111111-2222-4333-8444-555555555557", "displayName": "no presence app",
         "kind": "confidential", "clientSecret": "contoso-limited-secret",
         "secretId": "a1b2c3d4-0000-4000-8000-00000000a003", "secretExpired": False,
         "applicationPermissions": ["User.Read.All", "Domain.Read.All"], "delegatedPermissions": [],
         "adminConsented": True, "allowPublicClientFlows": False},
        {"clientId": "22222222-3333-4444-8555-666666666666", "displayName": "presence-sync (delegated)",
         "kind": "public", "clientSecret": None, "secretId": None, "secretExpired": False,
         "applicationPermissions": [], "delegatedPermissions": DELEGATED, "adminConsented": True,
         "allowPublicClientFlows": True},
        {"clientId": "22222222-3333-4444-8555-666666666667", "displayName": "unconsented public app",
         "kind": "public", "clientSecret": None, "secretId": None, "secretExpired": False,
         "applicationPermissions": [], "delegatedPermissions": DELEGATED, "adminConsented": False,
         "allowPublicClientFlows": True},
    ]
    special = [make_user("contoso", s) for s in CONTOSO_SPECIAL]
    taken = {u["userPrincipalName"].split("@")[0].lower() for u in special}
    taken |= {u["displayName"].lower() for u in special} | {"rachel green", "someone.else", "nobody.at.all"}
    regular = regular_users("contoso", [("contoso.com", 85), ("contoso.co.uk", 10),
                                        ("contoso.onmicrosoft.com", 5)], 116, 20260105, taken)
    users = special + regular
    pool = [u for u in regular if u["accountEnabled"]]
    items, answers = build_list("contoso", CONTOSO_ROWS, pool, 180)
    check_key(answers, users)
    doc = {
        "tenantId": "6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f", "name": "contoso", "displayName": "Contoso Ltd",
        "domains": [
            {"id": "contoso.onmicrosoft.com", "isVerified": True, "isInitial": True, "isDefault": False},
            {"id": "contoso.com", "isVerified": True, "isInitial": False, "isDefault": True},
            {"id": "contoso.co.uk", "isVerified": True, "isInitial": False, "isDefault": False},
            {"id": "contoso-sales.com", "isVerified": False, "isInitial": False, "isDefault": False},
        ],
        "apps": apps,
        "serviceAccounts": [
            {"upn": "svc-presence@contoso.com", "password": "Pr3sence-Sync!2026", "mfaRequired": False},
            {"upn": "svc-mfa@contoso.com", "password": "Mfa-Required!2026", "mfaRequired": True},
        ],
        "users": users,
        "upnColumn": "UPN",
        "site": {"hostname": "contoso.sharepoint.com", "path": "/sites/contoso-agents",
                 "displayName": "Contoso Agents", "lists": [_agent_list(items)]},
    }
    return doc, {"tenant": "contoso", "list": "Agents", "items": answers}


def fabrikam() -> tuple[dict[str, Any], dict[str, Any]]:
    apps = [
        {"clientId": "33333333-4444-4555-8666-777777777777", "displayName": "presence-sync (application)",
         "kind": "confidential", "clientSecret": "fabrikam-app-secret-value",
         "secretId": "b1b2c3d4-0000-4000-8000-00000000b001", "secretExpired": False,
         "applicationPermissions": APP_PERMS, "delegatedPermissions": [], "adminConsented": True,
         "allowPublicClientFlows": False},
        {"clientId": "44444444-5555-4666-8777-888888888888", "displayName": "presence-sync (delegated)",
         "kind": "public", "clientSecret": None, "secretId": None, "secretExpired": False,
         "applicationPermissions": [], "delegatedPermissions": DELEGATED, "adminConsented": True,
         "allowPublicClientFlows": True},
    ]
    special = [make_user("fabrikam", s) for s in FABRIKAM_SPECIAL]
    taken = {u["userPrincipalName"].split("@")[0].lower() for u in special}
    taken |= {u["displayName"].lower() for u in special} | {"someone", "bob.kentt"}
    regular = regular_users("fabrikam", [("fabrikam.com", 95), ("fabrikam.onmicrosoft.com", 5)], 34,
                            20260106, taken)
    users = special + regular
    pool = [u for u in regular if u["accountEnabled"]]
    items, answers = build_list("fabrikam", FABRIKAM_ROWS, pool, 56)
    check_key(answers, users)
    doc = {
        "tenantId": "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d", "name": "fabrikam", "displayName": "Fabrikam, Inc.",
        "domains": [
            {"id": "fabrikam.onmicrosoft.com", "isVerified": True, "isInitial": True, "isDefault": False},
            {"id": "fabrikam.com", "isVerified": True, "isInitial": False, "isDefault": True},
        ],
        "apps": apps,
        "serviceAccounts": [
            {"upn": "svc-presence@fabrikam.com", "password": "Fabrikam-Svc!2026", "mfaRequired": False},
        ],
        "users": users,
        "upnColumn": "UPN",
        "site": {"hostname": "fabrikam.sharepoint.com", "path": "/sites/fabrikam-agents",
                 "displayName": "Fabrikam Agents", "lists": [_agent_list(items)]},
    }
    return doc, {"tenant": "fabrikam", "list": "Agents", "items": answers}


def _agent_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"title": "Agents",
            "columns": ["Title", "UPN", "Team", "Availability", "Activity", "PresenceUpdated", "UpnStatus"],
            "items": items}


def _lines(value: Any, indent: str) -> str:
    """JSON with one line per user / list item / answer row: readable, and diffs stay small."""
    if isinstance(value, dict) and any(isinstance(v, list) and v and isinstance(v[0], dict)
                                       for v in value.values()):
        inner = indent + "  "
        parts = [f"{inner}{json.dumps(k)}: {_lines(v, inner)}" for k, v in value.items()]
        return "{\n" + ",\n".join(parts) + "\n" + indent + "}"
    if isinstance(value, list) and value and isinstance(value[0], dict):
        inner = indent + "  "
        return "[\n" + ",\n".join(inner + _lines(v, inner) for v in value) + "\n" + indent + "]"
    return json.dumps(value, ensure_ascii=False)


def dump(path: Path, doc: dict[str, Any]) -> None:
    text = _lines(doc, "") + "\n"
    assert json.loads(text) == doc
    path.write_text(text, encoding="utf-8")


def main() -> int:
    out = ROOT / "sync" / "emulator" / "fixtures"
    out.mkdir(parents=True, exist_ok=True)
    for name, (doc, key) in (("contoso", contoso()), ("fabrikam", fabrikam())):
        dump(out / f"{name}.json", doc)
        dump(out / f"{name}.answers.json", key)
        print(f"{name}: {len(doc['users'])} users, {len(key['items'])} agents")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
