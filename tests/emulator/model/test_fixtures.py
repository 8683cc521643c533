"""The fixture tenants and their answer keys hang together (structure only: no UPN is validated here)."""

from __future__ import annotations

import importlib.util
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from sync.emulator.model.fixtures import load_world, tenant_from_json

ROOT = Path(__file__).resolve().parents[3]
TENANTS = ROOT / "sync" / "emulator" / "fixtures"

CODES = ["EMPTY", "WHITESPACE", "UNICODE", "QUOTED", "ANGLE_ADDRESS", "PREFIX", "REPEATED_PREFIX", "URL_ENCODED",
         "TRAILING_DOT", "MULTIPLE", "SYNTAX", "CONFUSABLE", "DISPLAY_NAME", "UNKNOWN_DOMAIN", "UNVERIFIED_DOMAIN",
         "GUEST", "NOT_UPN", "NOT_FOUND", "DISABLED", "DUPLICATE"]
ERRORS = {"EMPTY", "MULTIPLE", "SYNTAX", "CONFUSABLE", "DISPLAY_NAME", "UNKNOWN_DOMAIN", "UNVERIFIED_DOMAIN",
          "NOT_FOUND"}
KINDS = ["whitespace", "case", "prefix", "display_name", "unknown_domain", "unverified_domain", "duplicate",
         "guest", "guest_home_address", "empty", "unicode", "non_ascii", "mail_not_upn", "sip_not_upn",
         "syntax", "not_found", "disabled", "quoted", "angle_address", "repeated_prefix", "url_encoded",
         "trailing_dot", "multiple", "confusable", "typo", "separator", "initials"]
GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def load(name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    doc = json.loads((TENANTS / f"{name}.json").read_text(encoding="utf-8"))
    key = json.loads((TENANTS / f"{name}.answers.json").read_text(encoding="utf-8"))
    return doc, key


@pytest.mark.parametrize("name", ["contoso", "fabrikam"])
def test_answer_key_covers_every_item_in_order(name: str) -> None:
    doc, key = load(name)
    assert key["tenant"] == name and key["list"] == "Agents"
    items = doc["site"]["lists"][0]["items"]
    assert [a["item_id"] for a in key["items"]] == [it["id"] for it in items]
    for it, a in zip(items, key["items"], strict=True):
        assert a["raw"] == it["fields"].get(doc["upnColumn"]), it["id"]


@pytest.mark.parametrize("name", ["contoso", "fabrikam"])
def test_answer_rows_are_well_formed(name: str) -> None:
    _, key = load(name)
    for a in key["items"]:
        codes = a["codes"]
        assert set(codes) <= set(CODES), a
        assert codes == sorted(codes, key=CODES.index), a  # reporting order
        assert len(set(codes) & ERRORS) <= 1, a  # one error per row
        if set(codes) & ERRORS:
            assert (a["status"], a["severity"], a["normalized_upn"]) == ("invalid", "error", ""), a
        elif codes:
            assert (a["status"], a["severity"]) == ("fixed", "warning") and a["normalized_upn"], a
        else:
            assert (a["status"], a["severity"], a["suggestion"]) == ("ok", "", ""), a
        assert a["normalized_upn"] == a["normalized_upn"].lower()
        assert a["suggestion"] == a["suggestion"].lower()
        if "NOT_UPN" in codes:
            assert a["suggestion"] == a["normalized_upn"], a
        assert a["kind"] in KINDS + ["clean"], a


@pytest.mark.parametrize("name", ["contoso", "fabrikam"])
def test_named_upns_exist_and_duplicates_are_on_later_items(name: str) -> None:
    doc, key = load(name)
    upns = {u["userPrincipalName"].lower() for u in doc["users"]}
    seen: set[str] = set()
    for a in key["items"]:
        for v in (a["normalized_upn"], a["suggestion"]):
            assert v == "" or v in upns, a
        if a["status"] != "invalid":
            assert ("DUPLICATE" in a["codes"]) == (a["normalized_upn"] in seen), a
            seen.add(a["normalized_upn"])


@pytest.mark.parametrize(("name", "minimum"), [("contoso", 3), ("fabrikam", 1)])
def test_each_defect_kind_appears_often_enough(name: str, minimum: int) -> None:
    doc, key = load(name)
    kinds = Counter(a["kind"] for a in key["items"])
    wanted = [k for k in KINDS if not (k == "unverified_domain" and name == "fabrikam")]
    short = {k: kinds[k] for k in wanted if kinds[k] < minimum}
    assert not short, short
    assert kinds["clean"] + kinds["case"] > len(key["items"]) / 2 - 10  # a realistic roster is mostly fine
    codes = Counter(c for a in key["items"] for c in a["codes"])
    assert all(codes[c] >= minimum for c in CODES if not (c == "UNVERIFIED_DOMAIN" and name == "fabrikam"))
    raws = [a["raw"] for a in key["items"]]
    assert None in raws and "" in raws
    assert any(r and r != r.strip() and r.strip() for r in raws)


def test_directory_variety() -> None:
    doc, _ = load("contoso")
    users = doc["users"]
    assert 140 <= len(users) <= 170
    ids = [u["id"] for u in users]
    assert len(set(ids)) == len(ids) and all(GUID.fullmatch(i) for i in ids)
    assert sum(not u["accountEnabled"] for u in users) >= 3
    guests = [u for u in users if u["userType"] == "Guest"]
    assert len(guests) >= 3 and all("#EXT#@contoso.onmicrosoft.com" in g["userPrincipalName"] for g in guests)
    assert all(g["mail"] and "#" not in g["mail"] for g in guests)
    assert sum(not u["teamsLicensed"] for u in users) >= 3
    assert sum(1 for u in users if u["mail"] and u["mail"].lower() != u["userPrincipalName"].lower()) >= 5
    sip_differs = [u for u in users if u["imAddresses"] and u["imAddresses"][0] != u["userPrincipalName"]]
    assert len(sip_differs) >= 3
    assert any(not u["displayName"].isascii() for u in users)
    domains = Counter(u["userPrincipalName"].rsplit("@", 1)[1] for u in users)
    assert domains["contoso.co.uk"] >= 3 and domains["contoso.onmicrosoft.com"] >= 3
    assert len({u["utcOffsetMinutes"] for u in users}) >= 5
    assert all(p.split(":", 1)[0] in ("SMTP", "smtp", "SIP") for u in users for p in u["proxyAddresses"])


def test_promised_names_and_ids() -> None:
    world = load_world(TENANTS)
    contoso = world.tenants["6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"]
    fabrikam = world.tenants["9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"]
    assert {d.id: d.is_verified for d in contoso.domains} == {
        "contoso.onmicrosoft.com": True, "contoso.com": True, "contoso.co.uk": True, "contoso-sales.com": False}
    assert [d.id for d in fabrikam.domains] == ["fabrikam.onmicrosoft.com", "fabrikam.com"]
    app = contoso.app("11111111-2222-4333-8444-555555555555")
    assert app is not None and app.client_secret == "contoso-app-secret-value"
    assert app.secret_id == "a1b2c3d4-0000-4000-8000-00000000a001"
    expired = contoso.app("11111111-2222-4333-8444-555555555556")
    assert expired is not None and expired.secret_expired
    limited = contoso.app("11111111-2222-4333-8444-555555555557")
    assert limited is not None and "Presence.Read.All" not in limited.application_permissions
    public = contoso.app("22222222-3333-4444-8555-666666666666")
    assert public is not None and public.allow_public_client_flows and public.admin_consented
    unconsented = contoso.app("22222222-3333-4444-8555-666666666667")
    assert unconsented is not None and not unconsented.admin_consented
    for t, upn in ((contoso, "svc-presence@contoso.com"), (contoso, "svc-mfa@contoso.com"),
                   (fabrikam, "svc-presence@fabrikam.com")):
        assert t.service_account(upn) is not None
        user = t.user_by_upn(upn)
        assert user is not None and not user.teams_licensed
    sa = contoso.service_account("svc-mfa@contoso.com")
    assert sa is not None and sa.mfa_required
    fab_app = fabrikam.app("33333333-4444-4555-8666-777777777777")
    assert fab_app is not None and fab_app.client_secret == "fabrikam-app-secret-value"
    assert fabrikam.app("44444444-5555-4666-8777-888888888888") is not None
    assert contoso.site.path == "/sites/contoso-agents" and fabrikam.site.path == "/sites/fabrikam-agents"
    agents = contoso.site.list_by_title("Agents")
    assert agents is not None and 100 < len(agents.items) <= 200
    fab_agents = fabrikam.site.list_by_title("Agents")
    assert fab_agents is not None and 30 <= len(fab_agents.items) <= 60


def test_fixtures_are_what_the_script_builds() -> None:
    """The committed JSON is exactly the output of scripts/make_fixtures.py (no hand edits drift in)."""
    spec = importlib.util.spec_from_file_location("make_fixtures", ROOT / "scripts" / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name, build in (("contoso", mod.contoso), ("fabrikam", mod.fabrikam)):
        doc, key = build()
        assert (doc, key) == load(name)
        tenant_from_json(doc)
