"""Large synthetic tenants for benchmarks: ``generate_tenant(100_000, 30_000, seed=7)`` in a few seconds.

The document has the fixture format (sync/emulator/fixtures/README.md) and the same kinds of variety as the
hand-made tenants: several domains (one unverified), a confidential and a public app, a service
account, disabled users, guests (``#EXT#``), users without Teams, mail and SIP addresses that differ
from the UPN, accented names, UK and onmicrosoft users, offices in several time zones. About 3% of
the Agent list carries the roster defects of the hand-made lists (whitespace, case, prefixes, display
names, unknown/unverified domains, duplicates, guests, empty cells, non-ASCII, mail instead of UPN,
syntax errors, typos). There is no answer key: use the hand-made tenants for exact expectations.

Deterministic for (users, agents, seed, name). Speed comes from plain string formatting: ids are
``<tenant-hash>-<counter>`` shaped as GUIDs rather than uuid5 per user.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any

__all__ = ["generate_tenant"]

FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth",
         "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
         "Daniel", "Lisa", "Matthew", "Nancy", "Anthony", "Sandra", "Mark", "Ashley", "Steven", "Emily",
         "Paul", "Michelle", "Andrew", "Amanda", "Joshua", "Melissa", "Kenneth", "Stephanie", "Kevin", "Laura",
         "Brian", "Rebecca", "Oliver", "Amelia", "Noah", "Olivia", "Liam", "Emma", "Lucas", "Mia", "Hugo",
         "Léa", "Chloé", "Zoë", "José", "María", "Søren", "Björn", "Anaïs", "Renée", "Jürgen", "Agnès",
         "Raúl", "Inês", "Mateo", "Sofía", "Arjun", "Priya", "Wei", "Yuki", "Hiroshi", "Aisha", "Omar",
         "Fatima", "Kwame", "Amara", "Ivan", "Olga", "Pavel", "Katarzyna", "Lukas", "Anna", "Elena", "Marco"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
        "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Taylor", "Moore", "Jackson",
        "Martin", "Lee", "Thompson", "White", "Harris", "Clark", "Lewis", "Robinson", "Walker", "Young",
        "Allen", "King", "Wright", "Scott", "Green", "Baker", "Adams", "Nelson", "Hill", "Campbell",
        "Mitchell", "Roberts", "Carter", "Phillips", "Evans", "Turner", "Müller", "Schäfer", "Dubois",
        "Lefèvre", "García", "Fernández", "Núñez", "Håkansson", "Østergaard", "Kowalski", "Nowak",
        "Novák", "Horváth", "Rossi", "Bianchi", "Silva", "Santos", "Patel", "Sharma", "Singh", "Wang",
        "Li", "Zhang", "Tanaka", "Sato", "Kim", "Park", "Nguyen", "Tran", "Okafor", "Mensah", "Ivanova",
        "O'Brien", "O'Neill", "MacDonald", "Fitzgerald"]
OFFICES = [("Redmond", -480), ("New York", -300), ("Toronto", -300), ("London", 0), ("Dublin", 0),
           ("Berlin", 60), ("Paris", 60), ("Madrid", 60), ("Bangalore", 330), ("Singapore", 480),
           ("Tokyo", 540), ("Sydney", 600)]
DEPARTMENTS = [("Customer Service", ["Customer Service Agent", "Senior Agent", "Team Lead"]),
               ("Technical Support", ["Support Engineer", "Escalation Engineer"]),
               ("Sales", ["Account Executive", "Inside Sales Representative"]),
               ("Billing", ["Billing Specialist", "Collections Agent"]),
               ("IT", ["Systems Administrator", "Service Desk Analyst"]),
               ("Operations", ["Workforce Planner", "Operations Manager"])]
TEAMS = ["Service Desk", "Billing", "Sales Support", "Tier 2", "Onboarding", "Retention"]
GUEST_DOMAINS = ["northwind.com", "fabrikam.com", "gmail.com", "outlook.com", "adventure-works.com"]
DEFECTS = ["whitespace", "case", "prefix", "display_name", "unknown_domain", "unverified_domain",
           "duplicate", "guest", "empty", "non_ascii", "mail_not_upn", "syntax", "not_found", "disabled"]
APP_PERMS = ["Presence.Read.All", "User.Read.All", "Domain.Read.All", "Sites.ReadWrite.All"]
DELEGATED = ["User.ReadBasic.All", "Directory.Read.All", "Presence.Read.All", "Sites.ReadWrite.All"]
_FOLD = str.maketrans("áàâäãåçéèêëíìîïñóòôöõøúùûüýÿßæœåÁÉÍÓÚÑÖÜØ'",
                      "aaaaaaceeeeiiiinoooooouuuuyysaoaAEIOUNOUO ")
_FULLWIDTH = {c: chr(ord(c) + 0xFEE0) for c in "abcdefghijklmnopqrstuvwxyz"}


def _ascii(name: str) -> str:
    return name.translate(_FOLD).replace(" ", "").lower()


def generate_tenant(users: int, agents: int, seed: int, name: str = "bigcorp") -> dict[str, Any]:
    """A tenant document with ``users`` directory users and an Agent list of ``agents`` items."""
    if agents > users:
        raise ValueError("agents must not exceed users")
    rng = random.Random(f"{name}:{seed}")
    h = hashlib.blake2b(f"{name}:{seed}".encode(), digest_size=16).hexdigest()
    prefix = f"{h[:8]}-{h[8:12]}-4{h[12:15]}"

    def gid(kind: int, i: int) -> str:  # GUID-shaped, unique per (kind, i), stable per (name, seed)
        return f"{prefix}-{8 + kind:x}{h[15:18]}-{i:012x}"

    com, uk, initial, unverified = f"{name}.com", f"{name}.co.uk", f"{name}.onmicrosoft.com", f"{name}-sales.com"
    ext = f"#EXT#@{initial}"
    docs: list[dict[str, Any]] = []
    taken: dict[str, int] = {}
    rand, choice = rng.random, rng.choice
    for i in range(users):
        first, last = choice(FIRST), choice(LAST)
        office, offset = choice(OFFICES)
        dept, titles = choice(DEPARTMENTS)
        r = rand()
        display = f"{first} {last}"
        local = f"{_ascii(first)}.{_ascii(last)}"
        n = taken.get(local, 0) + 1
        taken[local] = n
        if n > 1:
            local = f"{local}{n}"
        if r < 0.01:  # guest from another organisation
            home_domain = GUEST_DOMAINS[i % len(GUEST_DOMAINS)]
            home = f"{local}@{home_domain}"
            upn = f"{local}_{home_domain}{ext}"
            docs.append({"id": gid(0, i), "userPrincipalName": upn, "displayName": display, "givenName": first,
                         "surname": last, "mail": home, "proxyAddresses": [f"SMTP:{home}"], "imAddresses": [],
                         "accountEnabled": True, "userType": "Guest", "teamsLicensed": True,
                         "jobTitle": "Contractor", "department": dept, "officeLocation": "External",
                         "mailNickname": f"{local}_{home_domain}#EXT#", "utcOffsetMinutes": 0})
            continue
        domain = uk if offset == 0 else (initial if r > 0.98 else com)
        mail = f"{local}@{domain}"
        upn_local = local
        if r < 0.06:  # mail differs from the UPN: short UPN, long mail
            upn_local = f"{_ascii(first)[0]}.{local.split('.', 1)[1]}"
            if upn_local in taken:
                upn_local = local
            taken[upn_local] = taken.get(upn_local, 0) + 1
        upn = f"{upn_local}@{domain}"
        sip = f"{_ascii(first)}{i}@{domain}" if 0.06 <= r < 0.09 else upn
        proxies = [f"SMTP:{mail}", f"SIP:{sip}"]
        if mail != upn:
            proxies.insert(1, f"smtp:{upn}")
        docs.append({"id": gid(0, i), "userPrincipalName": upn, "displayName": display, "givenName": first,
                     "surname": last, "mail": mail, "proxyAddresses": proxies, "imAddresses": [sip],
                     "accountEnabled": not (0.10 <= r < 0.12), "userType": "Member",
                     "teamsLicensed": not (0.12 <= r < 0.16), "jobTitle": titles[i % len(titles)],
                     "department": dept, "officeLocation": office, "mailNickname": upn_local,
                     "utcOffsetMinutes": offset})
    docs.append({"id": gid(1, 0), "userPrincipalName": f"svc-presence@{com}", "displayName": "Presence Sync Service",
                 "givenName": None, "surname": None, "mail": f"svc-presence@{com}",
                 "proxyAddresses": [f"SMTP:svc-presence@{com}"], "imAddresses": [], "accountEnabled": True,
                 "userType": "Member", "teamsLicensed": False, "jobTitle": "Service Account", "department": "IT",
                 "officeLocation": "Redmond", "mailNickname": "svc-presence", "utcOffsetMinutes": -480})
    secret = f"{name}-secret-{h[:20]}"
    return {
        "tenantId": gid(2, 0), "name": name, "displayName": f"{name.title()} (generated)",
        "domains": [
            {"id": initial, "isVerified": True, "isInitial": True, "isDefault": False},
            {"id": com, "isVerified": True, "isInitial": False, "isDefault": True},
            {"id": uk, "isVerified": True, "isInitial": False, "isDefault": False},
            {"id": unverified, "isVerified": False, "isInitial": False, "isDefault": False},
        ],
        "apps": [
            {"clientId": gid(3, 1), "displayName": "presence-sync (application)", "kind": "confidential",
             "clientSecret": secret, "secretId": gid(3, 2), "secretExpired": False,
             "applicationPermissions": APP_PERMS, "delegatedPermissions": [], "adminConsented": True,
             "allowPublicClientFlows": False},
            {"clientId": gid(3, 3), "displayName": "presence-sync (delegated)", "kind": "public",
             "clientSecret": None, "secretId": None, "secretExpired": False, "applicationPermissions": [],
             "delegatedPermissions": DELEGATED, "adminConsented": True, "allowPublicClientFlows": True},
        ],
        "serviceAccounts": [{"upn": f"svc-presence@{com}", "password": f"Svc-{h[20:32]}!", "mfaRequired": False}],
        "users": docs,
        "upnColumn": "UPN",
        "site": {"hostname": f"{name}.sharepoint.com", "path": f"/sites/{name}-agents",
                 "displayName": f"{name.title()} Agents",
                 "lists": [{"title": "Agents", "columns": ["Title", "UPN", "Team", "Availability", "Activity",
                                                           "PresenceUpdated", "UpnStatus"],
                            "items": _agent_items(rng, docs[:users], agents, unverified)}]},
    }


def _agent_items(rng: random.Random, users: list[dict[str, Any]], count: int,
                 unverified: str) -> list[dict[str, Any]]:
    """The Agent list: distinct agents, about 3% of cells carrying a roster defect."""
    members = [u for u in users if u["userType"] == "Member" and u["accountEnabled"]]
    pool = rng.sample(members, min(count, len(members)))
    guests = [u for u in users if u["userType"] == "Guest"] or members
    other = [u for u in members if u["mail"] != u["userPrincipalName"]] or members
    disabled = [u for u in users if not u["accountEnabled"]] or members
    items: list[dict[str, Any]] = []
    for i in range(count):
        u = pool[i % len(pool)]
        upn: str | None = u["userPrincipalName"]
        if rng.random() < 0.03:
            kind = DEFECTS[rng.randrange(len(DEFECTS))]
            upn, u = _defect(rng, kind, u, items, guests, other, disabled, unverified)
        items.append({"id": i + 1, "fields": {"Title": u["displayName"], "UPN": upn, "Team": TEAMS[i % len(TEAMS)]}})
    return items


def _defect(rng: random.Random, kind: str, u: dict[str, Any], items: list[dict[str, Any]],
            guests: list[dict[str, Any]], other: list[dict[str, Any]], disabled: list[dict[str, Any]],
            unverified: str) -> tuple[str | None, dict[str, Any]]:
    upn: str = u["userPrincipalName"]
    local, domain = upn.split("@", 1)
    if kind == "whitespace":
        return rng.choice(("  {}", "{}\t", "\u00a0{}", "{} ")).format(upn), u
    if kind == "case":
        return upn.upper() if rng.random() < 0.5 else f"{local.title()}@{domain.upper()}", u
    if kind == "prefix":
        return rng.choice(("sip:", "SIP:", "mailto:")) + upn, u
    if kind == "display_name":
        return (u["displayName"] if rng.random() < 0.6 else f"{u['surname']}, {u['givenName']}"), u
    if kind == "unknown_domain":
        return f"{local}@{rng.choice(('gmail.com', domain.split('.', 1)[0] + '.net'))}", u
    if kind == "unverified_domain":
        return f"{local}@{unverified}", u
    if kind == "duplicate" and items:
        prev = items[rng.randrange(len(items))]["fields"]
        return prev["UPN"], u
    if kind == "guest":
        g = rng.choice(guests)
        return (g["userPrincipalName"] if rng.random() < 0.6 else g["mail"]), g
    if kind == "empty":
        return rng.choice((None, "", "   ")), u
    if kind == "non_ascii":
        if rng.random() < 0.5:
            return "".join(_FULLWIDTH.get(c, c) for c in local) + "@" + domain, u
        return local.replace("e", "é", 1).replace("a", "á", 1) + "@" + domain, u
    if kind == "mail_not_upn":
        o = rng.choice(other)
        return o["mail"], o
    if kind == "syntax":
        return rng.choice((local, f"{local}@@{domain}", f"{local}@", local.replace(".", "..", 1) + "@" + domain)), u
    if kind == "not_found":
        return local[:-1] + ("x" if local[-1] != "x" else "y") + "@" + domain, u
    d = rng.choice(disabled)
    return d["userPrincipalName"], d
