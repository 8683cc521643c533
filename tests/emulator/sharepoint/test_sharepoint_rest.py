"""SharePoint REST over httpx: formats, paging links, auth refusals, writes with etags, filters, throttling."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sync.emulator.model.pause import IN_FLIGHT
from sync.emulator.model.tenant import SpList
from sync.emulator.server import EmulatorServer

CAME_BACK = IN_FLIGHT + 0.02  # seconds: an early retry that comes back after the 429 was read

CONTOSO = "6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"
FABRIKAM = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
PUBLIC_APP = "22222222-3333-4444-8555-666666666666"
VERBOSE = "application/json;odata=verbose"
NOMETA = "application/json;odata=nometadata"
API = "/sites/contoso-agents/_api"


def token(emulator: EmulatorServer, permissions: frozenset[str] | set[str] = frozenset({"Sites.ReadWrite.All"}),
          *, tenant: str = CONTOSO, client_id: str = PUBLIC_APP, user: str | None = "svc-presence@contoso.com",
          audience: str | None = None) -> str:
    return emulator.state.tokens.issue_access(
        tenant_id=tenant, client_id=client_id, permissions=permissions, audience=audience or emulator.base_url,
        user_upn=user, via_secret=user is None).token


@pytest.fixture()
def sp(http: httpx.Client, emulator: EmulatorServer) -> Iterator[httpx.Client]:
    http.headers.update({"Authorization": f"Bearer {token(emulator)}", "Accept": VERBOSE})
    yield http
    http.headers.pop("Authorization", None)
    http.headers.pop("Accept", None)


@pytest.fixture()
def temp_list(emulator: EmulatorServer) -> Iterator[SpList]:
    site = emulator.state.world.tenants[CONTOSO].site
    lst = SpList(id=str(uuid.uuid4()), title=f"T{uuid.uuid4().hex[:8]}", columns=["Title", "UPN", "Team", "Score"])
    for i in range(1, 8):
        lst.add({"Title": f"Agent {i}", "UPN": f"agent{i}@contoso.com", "Team": "Red" if i % 2 else "Blue",
                 "Score": i * 10})
    lst.items[3].fields["Title"] = "O'Brien"
    site.lists[lst.title.lower()] = lst
    yield lst
    site.lists.pop(lst.title.lower(), None)


def items_url(lst: SpList) -> str:
    return f"{API}/web/lists/GetByTitle('{lst.title}')/items"


def ids(body: dict[str, Any]) -> list[int]:
    rows = body["d"]["results"] if "d" in body else body["value"]
    return [r["Id"] for r in rows]


def test_contextinfo_in_both_shapes(sp: httpx.Client) -> None:
    r = sp.post(f"{API}/contextInfo")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json;odata=verbose")
    info = r.json()["d"]["GetContextWebInformation"]
    assert info["FormDigestTimeoutSeconds"] == 1800 and info["FormDigestValue"]
    assert info["WebFullUrl"].endswith("/sites/contoso-agents")
    flat = sp.post(f"{API}/contextinfo", headers={"Accept": NOMETA}).json()
    assert flat["SupportedSchemaVersions"] == ["14.0.0.0", "15.0.0.0"] and "d" not in flat


def test_nometadata_paging_follows_odata_nextlink(sp: httpx.Client, temp_list: SpList) -> None:
    r = sp.get(items_url(temp_list), params={"$top": "3", "$select": "Id,Title"}, headers={"Accept": NOMETA})
    seen: list[int] = []
    while True:
        assert r.status_code == 200, r.text
        body = r.json()
        assert all(set(row) == {"Id", "Title"} for row in body["value"])  # no annotations, $select kept
        seen += ids(body)
        nxt = body.get("odata.nextLink")
        if not nxt:
            break
        assert nxt.startswith(str(sp.base_url).rstrip("/") + "/sites/contoso-agents/_api/")
        assert "p_ID%3D" in nxt and "%24top=3" in nxt and "%24select=Id%2CTitle" in nxt
        r = sp.get(nxt, headers={"Accept": NOMETA})
    assert seen == [1, 2, 3, 4, 5, 6, 7]


def test_verbose_and_minimal_annotations(sp: httpx.Client, temp_list: SpList) -> None:
    verbose = sp.get(items_url(temp_list), params={"$top": "2"}).json()["d"]
    first = verbose["results"][0]
    assert first["__metadata"]["type"] == temp_list.entity_type_name and first["__metadata"]["etag"] == '"1"'
    assert first["ID"] == first["Id"] == 1 and first["UPN"] == "agent1@contoso.com" and first["GUID"]
    assert verbose["__next"].startswith("https://") and "p_ID%3D2" in verbose["__next"]
    minimal = sp.get(items_url(temp_list), params={"$top": "1"},
                     headers={"Accept": "application/json;odata=minimalmetadata"}).json()
    assert minimal["odata.metadata"].endswith("ListItems") and minimal["value"][0]["odata.etag"] == '"1"'


def test_filters_orderby_and_their_refusals(sp: httpx.Client, temp_list: SpList) -> None:
    def query(flt: str, **extra: str) -> httpx.Response:
        return sp.get(items_url(temp_list), params={"$filter": flt, **extra})

    assert ids(query("Team eq 'red' and Score gt 20").json()) == [3, 5, 7]  # text compares ignore case
    assert ids(query("Title eq 'O''Brien' or Id eq 6").json()) == [3, 6]
    assert ids(query("startswith(UPN,'agent1') or (Id ge 6 and Id le 6)").json()) == [1, 6]
    assert ids(query("Team ne 'Red'", **{"$orderby": "Id desc"}).json()) == [6, 4, 2]
    bad = query("endswith(UPN,'x')")
    assert bad.status_code == 400 and "is not valid" in bad.json()["error"]["message"]["value"]
    missing = query("Nope eq 1")
    assert missing.status_code == 400 and "Column 'Nope' does not exist" in missing.text
    assert sp.get(items_url(temp_list), params={"$top": "5001"}).status_code == 400


def test_list_lookups(sp: httpx.Client, temp_list: SpList) -> None:
    r = sp.get(f"{API}/web/lists/getbytitle('{temp_list.title.upper()}')",
               params={"$select": "ListItemEntityTypeFullName,Id"})
    assert r.json()["d"]["ListItemEntityTypeFullName"] == temp_list.entity_type_name
    assert sp.get(f"{API}/web/lists(guid'{temp_list.id}')/items(5)").json()["d"]["Title"] == "Agent 5"
    parent = sp.get(f"{API}/web/lists(guid'{temp_list.id}')/getItemById(5)/ParentList").json()["d"]
    assert parent["Id"] == temp_list.id
    missing = sp.get(f"{API}/web/lists/GetByTitle('No such list')/items")
    assert missing.status_code == 404 and missing.json()["error"]["code"].startswith("-2130575322")
    assert sp.get(f"{API}/web/lists(guid'{temp_list.id}')/items(99)").status_code == 404
    assert sp.get("/sites/nowhere/_api/web").status_code == 404


def test_merge_with_etags(sp: httpx.Client, temp_list: SpList) -> None:
    url = f"{items_url(temp_list)}(2)"
    body = {"__metadata": {"type": temp_list.entity_type_name}, "Team": "Green"}
    merge = {"X-HTTP-Method": "MERGE", "Content-Type": VERBOSE}
    ok = sp.post(url, json=body, headers={**merge, "If-Match": '"1"'})
    assert ok.status_code == 204 and ok.headers["etag"] == '"2"'
    stale = sp.post(url, json=body, headers={**merge, "If-Match": '"1"'})
    assert stale.status_code == 412
    err = stale.json()["error"]
    assert err["code"] == "-1, Microsoft.SharePoint.Client.ClientServiceException"
    assert "does not match the object's ETag value" in err["message"]["value"]
    blind = sp.post(url, json={**body, "Team": "Teal"}, headers=merge)  # no If-Match: overwrite
    assert blind.status_code == 204 and temp_list.items[2].fields["Team"] == "Teal" and temp_list.items[2].version == 3
    patched = sp.patch(url, json={"Team": "Olive"}, headers={"Content-Type": NOMETA, "If-Match": "*"})
    assert patched.status_code == 204 and temp_list.items[2].fields["Team"] == "Olive"


def test_write_validation_and_delete(sp: httpx.Client, temp_list: SpList) -> None:
    url = items_url(temp_list)
    verbose = {"Content-Type": VERBOSE}
    unknown = sp.post(url, json={"__metadata": {"type": temp_list.entity_type_name}, "Colour": "x"}, headers=verbose)
    assert unknown.status_code == 400 and f"The property 'Colour' does not exist on type " \
        f"'{temp_list.entity_type_name}'" in unknown.json()["error"]["message"]["value"]
    wrong_type = sp.post(url, json={"__metadata": {"type": "SP.Data.OtherListItem"}, "Title": "x"}, headers=verbose)
    assert wrong_type.status_code == 400
    added = sp.post(url, json={"__metadata": {"type": temp_list.entity_type_name}, "Title": "Eight"}, headers=verbose)
    assert added.status_code == 201 and added.json()["d"]["Id"] == 8
    gone = sp.post(f"{url}(8)", headers={"X-HTTP-Method": "DELETE", "If-Match": "*"})
    assert gone.status_code == 200 and 8 not in temp_list.items


def test_auth_refusals(http: httpx.Client, emulator: EmulatorServer) -> None:
    url = f"{API}/web/lists/GetByTitle('Agents')"

    def get(tok: str | None) -> httpx.Response:
        return http.get(url, headers={"Accept": VERBOSE, **({"Authorization": f"Bearer {tok}"} if tok else {})})

    app_only = get(token(emulator, user=None))
    assert app_only.status_code == 401
    assert app_only.json() == {"error_description": "Unsupported app only token."}
    assert app_only.headers["x-ms-diagnostics"].startswith('3000003;reason="Unsupported app only token."')
    assert f'realm="{CONTOSO}"' in app_only.headers["www-authenticate"]
    assert get(None).status_code == 401
    assert get(token(emulator, tenant=FABRIKAM)).status_code == 401
    assert get(token(emulator, audience="https://graph.microsoft.com")).status_code == 401
    assert get(token(emulator, audience="https://contoso.sharepoint.com")).status_code == 200
    assert get(token(emulator, {"User.Read.All"})).status_code == 403
    reader = token(emulator, {"Sites.Read.All"})
    assert get(reader).status_code == 200
    denied = http.post(f"{url}/items(1)", json={"Title": "x"},
                       headers={"Authorization": f"Bearer {reader}", "X-HTTP-Method": "MERGE", "Accept": VERBOSE})
    assert denied.status_code == 403
    assert denied.json()["error"]["code"] == "-2147024891, System.UnauthorizedAccessException"


def test_list_view_threshold(sp: httpx.Client, emulator: EmulatorServer) -> None:
    site = emulator.state.world.tenants[CONTOSO].site
    big = SpList(id=str(uuid.uuid4()), title=f"Big{uuid.uuid4().hex[:6]}", columns=["Title", "Team", "UPN"])
    for i in range(5001):
        big.add({"Title": f"A{i}", "Team": f"T{i % 7}", "UPN": f"a{i}@contoso.com"})
    site.lists[big.title.lower()] = big
    try:
        url = items_url(big)
        refused = sp.get(url, params={"$filter": "Team eq 'T3'"}, headers={"Accept": NOMETA})
        assert refused.status_code == 500
        err = refused.json()["odata.error"]
        assert err["code"] == "-2147024860, Microsoft.SharePoint.SPQueryThrottledException"
        assert err["message"]["value"] == ("The attempted operation is prohibited because it exceeds the list "
                                           "view threshold.")
        assert ids(sp.get(url, params={"$filter": "Id gt 4998"}).json()) == [4999, 5000, 5001]
        assert len(ids(sp.get(url, params={"$top": "5000"}).json())) == 5000  # unfiltered paging is fine
        big.indexed_columns.add("UPN")
        assert ids(sp.get(url, params={"$filter": "UPN eq 'a7@contoso.com'"}).json()) == [8]
    finally:
        site.lists.pop(big.title.lower(), None)


def test_throttling_429_then_503_on_early_retries(http: httpx.Client, limits: EmulatorServer) -> None:
    st = limits.state
    client_id = f"throttle-{uuid.uuid4()}"  # its own budget key, so other tests are untouched
    tok = token(limits, client_id=client_id)
    st.limits.sharepoint_ru_per_minute = 3  # reading the web costs 1 RU: three fit in the minute
    st.apply_limits()
    throttled, violations = st.stats.throttled, st.stats.retry_after_violations

    def get() -> httpx.Response:
        return http.get(f"{API}/web", headers={"Authorization": f"Bearer {tok}", "Accept": VERBOSE})

    assert [get().status_code for _ in range(3)] == [200, 200, 200]
    first = get()
    assert first.status_code == 429 and float(first.headers["retry-after"]) >= 1
    time.sleep(CAME_BACK)  # after the client read the 429 (model/pause.py: sooner was still on its way)
    assert get().status_code == 429  # came back too early: a violation
    time.sleep(CAME_BACK)  # after the client read the 429 (model/pause.py: sooner was still on its way)
    busy = get()  # again too early: the server is "too busy"
    assert busy.status_code == 503 and float(busy.headers["retry-after"]) >= 1
    assert st.stats.throttled - throttled == 3
    assert st.stats.retry_after_violations - violations == 2
