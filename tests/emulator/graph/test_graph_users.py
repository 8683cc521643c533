"""Graph v1.0 directory reads over loopback TLS with httpx: users, paging, filters, lookups, delta, domains."""

from __future__ import annotations

import dataclasses
import math
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest

from sync.emulator.graph.common import decode_token, encode_token
from sync.emulator.model.tenant import Tenant, User
from sync.emulator.server import EmulatorServer

CONTOSO = "6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"
FABRIKAM = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
APP_ID = "11111111-2222-4333-8444-555555555555"
APP_SECRET = "contoso-app-secret-value"


def app_token(http: httpx.Client, tenant: str = CONTOSO, client_id: str = APP_ID, secret: str = APP_SECRET) -> str:
    r = http.post(f"/{tenant}/oauth2/v2.0/token", data={
        "client_id": client_id, "client_secret": secret, "grant_type": "client_credentials",
        "scope": "https://graph.microsoft.com/.default"})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def minted(emulator: EmulatorServer, permissions: set[str], *, tenant: str = CONTOSO, client_id: str = APP_ID,
           user_upn: str | None = None, audience: str = "https://graph.microsoft.com") -> str:
    """A token straight from the token store, for shapes the fixture apps do not have."""
    return emulator.state.tokens.issue_access(tenant_id=tenant, client_id=client_id, permissions=permissions,
                                              audience=audience, user_upn=user_upn, via_secret=user_upn is None).token


def follow(client: httpx.Client, url: str, params: dict[str, str] | None = None) -> list[dict[str, Any]]:
    pages = []
    r = client.get(url, params=params)
    while True:
        assert r.status_code == 200, r.text
        pages.append(r.json())
        nxt = pages[-1].get("@odata.nextLink")
        if not nxt:
            return pages
        r = client.get(nxt)


# --- authentication -------------------------------------------------------------------------------------

def test_missing_token_is_401(http: httpx.Client) -> None:
    r = http.get("/v1.0/users")
    assert r.status_code == 401
    err = r.json()["error"]
    assert err["code"] == "InvalidAuthenticationToken"
    assert err["message"] == "Access token is empty."
    assert err["innerError"]["request-id"] == r.headers["request-id"]


def test_expired_revoked_foreign_and_wrong_audience_tokens_are_401(http: httpx.Client, emulator: EmulatorServer) -> None:
    perms = {"User.Read.All"}
    expired = emulator.state.tokens.issue_access(tenant_id=CONTOSO, client_id=APP_ID, permissions=perms,
                                                 audience="https://graph.microsoft.com")
    expired.expires_at = time.time() - 1
    lone_app = str(uuid.uuid4())
    revoked = minted(emulator, perms, client_id=lone_app)
    assert emulator.state.tokens.revoke(client_id=lone_app) == 1
    unknown_tenant = minted(emulator, perms, tenant=str(uuid.uuid4()))
    sharepoint = minted(emulator, perms, audience="https://contoso.sharepoint.com")
    for token in (expired.token, revoked, unknown_tenant, sharepoint, "not-a-token"):
        r = http.get("/v1.0/users", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, token
        assert r.json()["error"]["code"] == "InvalidAuthenticationToken"
        assert "WWW-Authenticate" in r.headers


def test_own_origin_is_a_graph_audience(http: httpx.Client, emulator: EmulatorServer) -> None:
    token = minted(emulator, {"User.Read.All"}, audience=emulator.base_url)
    r = http.get("/v1.0/users", params={"$top": "1"}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text


def test_missing_permission_is_403(http: httpx.Client, emulator: EmulatorServer) -> None:
    token = minted(emulator, {"Presence.Read.All"})
    r = http.get("/v1.0/users", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "Authorization_RequestDenied"


def test_client_request_id_is_echoed(graph: httpx.Client) -> None:
    crid = str(uuid.uuid4())
    r = graph.get("/v1.0/domains", headers={"client-request-id": crid})
    assert r.headers["client-request-id"] == crid
    assert r.headers["request-id"]
    assert r.headers["content-type"].startswith("application/json;odata.metadata=minimal")


# --- GET /users -----------------------------------------------------------------------------------------

def test_users_page_through_with_top_and_select(graph: httpx.Client, contoso: Tenant, emulator: EmulatorServer) -> None:
    n = len(contoso.users)
    top = max(1, math.ceil(n / 3))
    pages = follow(graph, "/v1.0/users", {"$top": str(top), "$select": "id,userPrincipalName,mail"})
    assert len(pages) == math.ceil(n / top)
    ids = [u["id"] for p in pages for u in p["value"]]
    assert len(ids) == len(set(ids)) == n
    assert set(ids) == set(contoso.users)
    assert all(set(u) == {"id", "userPrincipalName", "mail"} for p in pages for u in p["value"])
    assert pages[0]["@odata.context"].endswith("/v1.0/$metadata#users(id,userPrincipalName,mail)")
    if len(pages) > 1:
        nxt = pages[0]["@odata.nextLink"]
        assert nxt.startswith(emulator.base_url + "/v1.0/users?")
        q = parse_qs(urlsplit(nxt).query)
        assert q["$top"] == [str(top)] and q["$select"] == ["id,userPrincipalName,mail"] and q["$skiptoken"]
    assert "@odata.nextLink" not in pages[-1]


def test_users_default_page_and_properties(graph: httpx.Client, contoso: Tenant, emulator: EmulatorServer) -> None:
    body = graph.get("/v1.0/users").json()
    assert len(body["value"]) == min(len(contoso.users), emulator.state.limits.page_default)
    assert ("@odata.nextLink" in body) == (len(contoso.users) > emulator.state.limits.page_default)
    first = body["value"][0]
    assert set(first) == {"businessPhones", "displayName", "givenName", "id", "jobTitle", "mail", "mobilePhone",
                          "officeLocation", "preferredLanguage", "surname", "userPrincipalName"}


@pytest.mark.parametrize("top", ["0", "1000", "-1", "abc"])
def test_top_out_of_range_is_400(graph: httpx.Client, top: str) -> None:
    r = graph.get("/v1.0/users", params={"$top": top})
    assert r.status_code == 400
    assert r.json()["error"]["message"] == \
        f"Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive."


def test_select_is_case_insensitive_and_unknown_property_is_400(graph: httpx.Client) -> None:
    r = graph.get("/v1.0/users", params={"$top": "1", "$select": "USERPRINCIPALNAME,imAddresses"})
    assert r.status_code == 200
    assert set(r.json()["value"][0]) == {"id", "userPrincipalName", "imAddresses"}
    r = graph.get("/v1.0/users", params={"$select": "id,favouriteColour"})
    assert r.status_code == 400
    assert "favouriteColour" in r.json()["error"]["message"]


def test_bad_skiptoken_is_400(graph: httpx.Client) -> None:
    assert graph.get("/v1.0/users", params={"$skiptoken": "garbage!"}).status_code == 400


# --- $filter --------------------------------------------------------------------------------------------

def _some_users(tenant: Tenant, k: int) -> list[User]:
    return [tenant.users[i] for i in sorted(tenant.users)[:k]]


def test_filter_eq_upn_is_case_insensitive(graph: httpx.Client, contoso: Tenant) -> None:
    user = _some_users(contoso, 1)[0]
    r = graph.get("/v1.0/users", params={"$filter": f"userPrincipalName eq '{user.user_principal_name.upper()}'"})
    assert r.status_code == 200
    assert [u["id"] for u in r.json()["value"]] == [user.id]


def test_filter_in_and_or_on_id_upn_mail(graph: httpx.Client, contoso: Tenant) -> None:
    users = _some_users(contoso, 3)
    with_mail = next((u for u in contoso.users.values() if u.mail), None)
    values = ",".join(f"'{u.id}'" for u in users)
    flt = f"id in ({values}) or userPrincipalName eq 'nobody@contoso.com'"
    if with_mail is not None:
        flt += f" or (mail eq '{with_mail.mail}')"
    r = graph.get("/v1.0/users", params={"$filter": flt, "$select": "id"})
    assert r.status_code == 200, r.text
    want = {u.id for u in users} | ({with_mail.id} if with_mail else set())
    assert {u["id"] for u in r.json()["value"]} == want


def test_filter_escaped_quote_is_a_literal(graph: httpx.Client) -> None:
    r = graph.get("/v1.0/users", params={"$filter": "userPrincipalName eq 'o''neil@contoso.com'"})
    assert r.status_code == 200
    assert r.json()["value"] == []
    r = graph.get("/v1.0/users", params={"$filter": "userPrincipalName eq 'o'neil@contoso.com'"})
    assert r.status_code == 400


def test_filter_value_limit(graph: httpx.Client) -> None:
    fifteen = ",".join(f"'{uuid.uuid4()}'" for _ in range(15))
    assert graph.get("/v1.0/users", params={"$filter": f"id in ({fifteen})"}).status_code == 200
    sixteen = fifteen + f",'{uuid.uuid4()}'"
    r = graph.get("/v1.0/users", params={"$filter": f"id in ({sixteen})"})
    assert r.status_code == 400
    assert "Max allowed: 15" in r.json()["error"]["message"]


@pytest.mark.parametrize("flt", ["displayName eq 'Adele Vance'", "endswith(userPrincipalName,'a')",
                                 "startswith(displayName,'a')", "userPrincipalName ge 'a' or id eq 'x'",
                                 "userPrincipalName ne 'a@contoso.com'", "mail eq null"])
def test_unsupported_filters_are_400(graph: httpx.Client, flt: str) -> None:
    r = graph.get("/v1.0/users", params={"$filter": flt})
    assert r.status_code == 400
    assert r.json()["error"]["code"] in ("Request_UnsupportedQuery", "BadRequest")


def test_filter_paging_keeps_the_filter(graph: httpx.Client, contoso: Tenant) -> None:
    users = _some_users(contoso, 3)
    flt = "id in (" + ",".join(f"'{u.id}'" for u in users) + ")"
    pages = follow(graph, "/v1.0/users", {"$filter": flt, "$top": "1"})
    assert [u["id"] for p in pages for u in p["value"]] == sorted(u.id for u in users)


# --- /users/{key}, /me ----------------------------------------------------------------------------------

def test_get_user_by_id_and_upn(graph: httpx.Client, contoso: Tenant) -> None:
    user = _some_users(contoso, 1)[0]
    by_id = graph.get(f"/v1.0/users/{user.id}").json()
    by_upn = graph.get(f"/v1.0/users/{user.user_principal_name.upper()}").json()
    by_key = graph.get(f"/v1.0/users('{user.user_principal_name}')", params={"$select": "id,displayName"}).json()
    assert by_id["id"] == by_upn["id"] == by_key["id"] == user.id
    assert by_upn["userPrincipalName"] == user.user_principal_name
    assert set(by_key) == {"@odata.context", "id", "displayName"}


def test_unknown_user_is_404_with_graph_shape(graph: httpx.Client) -> None:
    r = graph.get("/v1.0/users/nobody@contoso.com")
    assert r.status_code == 404
    err = r.json()["error"]
    assert err["code"] == "Request_ResourceNotFound"
    assert err["message"] == ("Resource 'nobody@contoso.com' does not exist or one of its queried "
                              "reference-property objects are not present.")
    assert set(err["innerError"]) >= {"date", "request-id", "client-request-id"}


def test_guest_lookup_needs_percent_encoded_hash(graph: httpx.Client, contoso: Tenant) -> None:
    guest = next(u for u in contoso.users.values() if "#EXT#" in u.user_principal_name)
    encoded = quote(guest.user_principal_name, safe="@")
    r = graph.get(f"/v1.0/users/{encoded}")
    assert "%23EXT%23" in str(r.request.url)
    assert r.status_code == 200 and r.json()["id"] == guest.id
    raw = graph.get(f"/v1.0/users/{guest.user_principal_name}")  # "#..." is a fragment and never sent
    assert "#" not in raw.request.url.raw_path.decode()
    assert raw.status_code == 404
    r = graph.get("/v1.0/users", params={"$filter": f"userPrincipalName eq '{guest.user_principal_name}'"})
    assert [u["id"] for u in r.json()["value"]] == [guest.id]


def test_me_needs_a_delegated_token(http: httpx.Client, graph: httpx.Client, emulator: EmulatorServer,
                                    contoso: Tenant) -> None:
    r = graph.get("/v1.0/me")
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "/me request is only valid with delegated authentication flow."
    user = _some_users(contoso, 1)[0]
    token = minted(emulator, {"User.ReadBasic.All"}, user_upn=user.user_principal_name)
    me = http.get("/v1.0/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["id"] == user.id


# --- /domains -------------------------------------------------------------------------------------------

def test_domains(graph: httpx.Client, contoso: Tenant) -> None:
    body = graph.get("/v1.0/domains").json()
    assert body["@odata.context"].endswith("$metadata#domains")
    got = {d["id"]: d for d in body["value"]}
    assert set(got) == {d.id for d in contoso.domains}
    for d in contoso.domains:
        assert got[d.id]["isVerified"] is d.is_verified
        assert got[d.id]["isDefault"] is d.is_default
        assert got[d.id]["isInitial"] is d.is_initial
    assert graph.get(f"/v1.0/domains/{contoso.domains[0].id}").json()["id"] == contoso.domains[0].id


def test_domains_need_domain_permission(http: httpx.Client, emulator: EmulatorServer) -> None:
    token = minted(emulator, {"User.Read.All"})
    assert http.get("/v1.0/domains", headers={"Authorization": f"Bearer {token}"}).status_code == 403


# --- /users/delta ---------------------------------------------------------------------------------------

def _delta_round(client: httpx.Client, url: str, params: dict[str, str] | None = None,
                 page: int | None = None) -> tuple[list[dict[str, Any]], str]:
    pages = follow(client, url, params)
    assert all("@odata.deltaLink" not in p for p in pages[:-1])
    if page is not None:  # every page but the last is full
        assert all(len(p["value"]) == page for p in pages[:-1]) and 0 < len(pages[-1]["value"]) <= page
    return [u for p in pages for u in p["value"]], pages[-1]["@odata.deltaLink"]


@pytest.fixture()
def scratch_users(contoso: Tenant) -> Iterator[list[str]]:
    """Ids of users a test adds; they are deleted afterwards if still there."""
    added: list[str] = []
    yield added
    for uid in added:
        contoso.delete_user(uid)


def test_delta_initial_then_incremental(graph: httpx.Client, contoso: Tenant, scratch_users: list[str]) -> None:
    top = max(1, math.ceil(len(contoso.users) / 4))
    items, delta_link = _delta_round(graph, "/v1.0/users/delta",
                                     {"$select": "userPrincipalName,displayName", "$top": str(top)}, page=top)
    assert {u["id"] for u in items} == set(contoso.users)
    assert all(set(u) == {"id", "userPrincipalName", "displayName"} for u in items)
    assert "$deltatoken=" in delta_link

    nothing, delta_link = _delta_round(graph, delta_link)
    assert nothing == []

    existing = contoso.users[sorted(contoso.users)[0]]
    new_ids = [str(uuid.uuid4()) for _ in range(2)]
    scratch_users.extend(new_ids)
    for i, uid in enumerate(new_ids):
        contoso.upsert_user(User(id=uid, user_principal_name=f"delta-test-{i}-{uid[:8]}@contoso.com",
                                 display_name=f"Delta Test {i}"))
    contoso.upsert_user(dataclasses.replace(existing, display_name=existing.display_name + " (renamed)"))
    try:
        changed, delta_link = _delta_round(graph, delta_link)
        by_id = {u["id"]: u for u in changed}
        assert set(by_id) == {*new_ids, existing.id}
        assert by_id[existing.id]["displayName"].endswith(" (renamed)")
        assert set(by_id[new_ids[0]]) == {"id", "userPrincipalName", "displayName"}  # $select kept in the link

        contoso.delete_user(new_ids[0], reason="deleted")
        contoso.delete_user(new_ids[1], reason="changed")
        removed, delta_link = _delta_round(graph, delta_link)
        assert {u["id"]: u["@removed"]["reason"] for u in removed} == {new_ids[0]: "deleted", new_ids[1]: "changed"}
    finally:
        contoso.upsert_user(dataclasses.replace(existing, display_name=existing.display_name))
    again, _ = _delta_round(graph, delta_link)
    assert [u["id"] for u in again] == [existing.id]


def test_delta_token_is_bound_to_its_tenant(graph: httpx.Client, http: httpx.Client) -> None:
    _, delta_link = _delta_round(graph, "/v1.0/users/delta", {"$select": "id"})
    other = app_token(http, FABRIKAM, "33333333-4444-4555-8666-777777777777", "fabrikam-app-secret-value")
    r = http.get(delta_link, headers={"Authorization": f"Bearer {other}"})
    assert r.status_code == 400
    r = graph.get("/v1.0/users/delta", params={"$deltatoken": "bm90LWEtdG9rZW4"})
    assert r.status_code == 400
    assert graph.get("/v1.0/users/delta", params={"$filter": "id eq 'x'"}).status_code == 400


def test_delta_token_from_another_directory_asks_for_a_full_sync(graph: httpx.Client) -> None:
    _, delta_link = _delta_round(graph, "/v1.0/users/delta", {"$select": "id"})
    token = decode_token(parse_qs(urlsplit(delta_link).query)["$deltatoken"][0])
    assert token is not None
    stale = encode_token({**token, "f": "another-directory"})  # as after a restart on other data
    r = graph.get("/v1.0/users/delta", params={"$deltatoken": stale})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "syncStateNotFound"
