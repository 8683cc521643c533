"""Directory reads a big-tenant job relies on: UPN range filters, delta page sizes, ``$deltatoken=latest``."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from sync.emulator.graph.filter import FilterError, UpnRange, parse_upn_range
from sync.emulator.model.tenant import Tenant
from sync.emulator.server import EmulatorServer
from sync.emulator.state import Limits

from .test_graph_users import follow


def test_range_parser() -> None:
    assert parse_upn_range("userPrincipalName eq 'a@x.com'") is None  # the eq/in/or parser's form
    assert parse_upn_range("userPrincipalName ge 'A' and userPrincipalName le 'b'") == UpnRange("a", "b")
    assert parse_upn_range("userPrincipalName le '0'") == UpnRange(None, "0")
    assert parse_upn_range("(userPrincipalName ge 'z')") == UpnRange("z", None)
    assert parse_upn_range("startsWith(userPrincipalName,'Ad')") == UpnRange(prefix="ad")
    clash = parse_upn_range("startswith(userPrincipalName,'a') and startswith(userPrincipalName,'b')")
    assert clash is not None and clash.empty
    both = parse_upn_range("userPrincipalName ge 'b' and userPrincipalName ge 'c' and userPrincipalName le 'q'")
    assert both == UpnRange("c", "q")
    for bad, code in (("userPrincipalName ge 'a' or userPrincipalName le 'b'", "Request_UnsupportedQuery"),
                      ("mail ge 'a'", "Request_UnsupportedQuery"),
                      ("userPrincipalName ne 'a' and userPrincipalName ge 'b'", "Request_UnsupportedQuery"),
                      ("userPrincipalName ge a", "BadRequest"),
                      ("startswith(userPrincipalName 'a')", "BadRequest")):
        with pytest.raises(FilterError) as exc:
            parse_upn_range(bad)
        assert exc.value.code == code, bad


def _upns(graph: httpx.Client, flt: str, top: str = "999") -> list[str]:
    pages = follow(graph, "/v1.0/users", {"$filter": flt, "$top": top, "$select": "id,userPrincipalName"})
    return [u["userPrincipalName"] for p in pages for u in p["value"]]


def test_range_filters_over_https(graph: httpx.Client, contoso: Tenant) -> None:
    every = sorted(u.user_principal_name for u in contoso.users.values())
    low = [u for u in every if "a" <= u.lower() <= "m"]
    got = _upns(graph, "userPrincipalName ge 'A' and userPrincipalName le 'M'", top="7")
    assert sorted(got) == low and len(low) > 7  # several pages, the filter kept in every nextLink
    prefix = every[0][:2]
    assert sorted(_upns(graph, f"startswith(userPrincipalName,'{prefix.upper()}')")) == \
        [u for u in every if u.lower().startswith(prefix.lower())]
    bounds = ["0", *"bdfhjlnprtvxz"]
    parts = [f"userPrincipalName le '{bounds[0]}'"]
    parts += [f"userPrincipalName ge '{a}' and userPrincipalName le '{b}'" for a, b in zip(bounds, bounds[1:],
                                                                                               strict=False)]
    parts.append(f"userPrincipalName ge '{bounds[-1]}'")
    union = [u for p in parts for u in _upns(graph, p)]
    assert sorted(set(union)) == every and len(union) == len(every)  # no UPN equals a bound here


def test_range_filter_next_link_keeps_filter_and_count(graph: httpx.Client, contoso: Tenant) -> None:
    flt = "userPrincipalName ge 'a'"
    r = graph.get("/v1.0/users", params={"$filter": flt, "$top": "2", "$count": "true"},
                  headers={"ConsistencyLevel": "eventual"})
    body = r.json()
    assert body["@odata.count"] == sum(1 for u in contoso.users.values() if u.user_principal_name.lower() >= "a")
    q = parse_qs(urlsplit(body["@odata.nextLink"]).query)
    assert q["$filter"] == [flt] and q["$top"] == ["2"]


@pytest.fixture()
def small_delta_pages(limits: EmulatorServer) -> Iterator[Limits]:
    limits.state.limits.delta_page_max = 50
    yield limits.state.limits


def test_delta_pages_are_capped(graph: httpx.Client, contoso: Tenant, small_delta_pages: Limits) -> None:
    assert Limits().delta_page_max == 200
    default = graph.get("/v1.0/users/delta", params={"$select": "id"}).json()
    assert len(default["value"]) == 50 and "@odata.nextLink" in default
    big = graph.get("/v1.0/users/delta", params={"$select": "id"}, headers={"Prefer": "odata.maxpagesize=120"})
    assert len(big.json()["value"]) == 50
    small = graph.get("/v1.0/users/delta", params={"$select": "id"}, headers={"Prefer": "odata.maxpagesize=20"})
    assert len(small.json()["value"]) == 20


def test_deltatoken_latest_sees_only_later_changes(graph: httpx.Client, http: httpx.Client,
                                                   contoso: Tenant) -> None:
    before_id, after_id = str(uuid.uuid4()), str(uuid.uuid4())

    def upsert(uid: str) -> None:
        r = http.post("/_emulator/directory", json={"tenant": "contoso", "upsert": [
            {"id": uid, "userPrincipalName": f"latest-{uid[:8]}@contoso.com", "displayName": "Latest"}]})
        assert r.status_code == 200, r.text

    upsert(before_id)
    try:
        now = graph.get("/v1.0/users/delta", params={"$deltatoken": "latest", "$select": "id,displayName"})
        assert now.status_code == 200, now.text
        assert now.json()["value"] == [] and "@odata.nextLink" not in now.json()
        link = now.json()["@odata.deltaLink"]
        upsert(after_id)
        http.post("/_emulator/directory", json={"tenant": "contoso", "delete": [before_id]})
        pages = follow(graph, link)
        got = {u["id"]: u for p in pages for u in p["value"]}
        assert set(got) == {after_id, before_id}
        assert got[before_id]["@removed"] == {"reason": "deleted"}
        assert set(got[after_id]) == {"id", "displayName"}  # $select kept in the link
    finally:
        http.post("/_emulator/directory", json={"tenant": "contoso", "delete": [before_id, after_id]})
