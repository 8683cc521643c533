"""Graph's list route over httpx: sites by path and id, list items with fields and paging, PATCH with etags."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sync.emulator.model.tenant import SpList
from sync.emulator.server import EmulatorServer

CONTOSO = "6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"
FABRIKAM = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
APP = "11111111-2222-4333-8444-555555555555"
PREFER = {"Prefer": "HonorNonIndexedQueriesWarningMayFailRandomly"}


def app_only(emulator: EmulatorServer, permissions: set[str] | None = None, tenant: str = CONTOSO) -> str:
    """A client-credentials token (minted from a secret), the kind SharePoint REST refuses."""
    return emulator.state.tokens.issue_access(
        tenant_id=tenant, client_id=APP, permissions=permissions or {"Sites.ReadWrite.All", "User.Read.All"},
        audience="https://graph.microsoft.com", via_secret=True).token


@pytest.fixture()
def graph(http: httpx.Client, emulator: EmulatorServer) -> Iterator[httpx.Client]:
    http.headers["Authorization"] = f"Bearer {app_only(emulator)}"
    yield http
    http.headers.pop("Authorization", None)


@pytest.fixture()
def temp_list(emulator: EmulatorServer) -> Iterator[SpList]:
    site = emulator.state.world.tenants[CONTOSO].site
    lst = SpList(id=str(uuid.uuid4()), title=f"G{uuid.uuid4().hex[:8]}", columns=["Title", "UPN", "Team"])
    for i in range(1, 8):
        lst.add({"Title": f"Agent {i}", "UPN": f"agent{i}@contoso.com", "Team": "Red" if i % 2 else None})
    site.lists[lst.title.lower()] = lst
    yield lst
    site.lists.pop(lst.title.lower(), None)


def site_id(emulator: EmulatorServer) -> str:
    return emulator.state.world.tenants[CONTOSO].site.id


@pytest.mark.parametrize("host", ["127.0.0.1", "contoso.sharepoint.com"])
def test_site_by_path(graph: httpx.Client, emulator: EmulatorServer, host: str) -> None:
    for suffix in ("", ":"):
        r = graph.get(f"/v1.0/sites/{host}:/sites/contoso-agents{suffix}")
        assert r.status_code == 200, r.text
        site = r.json()
        assert site["id"] == site_id(emulator) and site["name"] == "contoso-agents"
        assert site["siteCollection"] == {"hostname": "contoso.sharepoint.com"}
        assert site["webUrl"] == "https://contoso.sharepoint.com/sites/contoso-agents"
    by_id = graph.get(f"/v1.0/sites/{site_id(emulator)}")
    assert by_id.status_code == 200 and by_id.json()["displayName"] == site["displayName"]
    assert graph.get(f"/v1.0/sites/{host}:/sites/nowhere").json()["error"]["code"] == "itemNotFound"


def test_other_tenants_site_is_hidden(http: httpx.Client, emulator: EmulatorServer) -> None:
    tok = app_only(emulator, tenant=FABRIKAM)
    r = http.get("/v1.0/sites/contoso.sharepoint.com:/sites/contoso-agents", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "itemNotFound"


def test_lists_and_items_with_fields_and_paging(graph: httpx.Client, emulator: EmulatorServer,
                                                temp_list: SpList) -> None:
    sid = site_id(emulator)
    titles = [x["displayName"] for x in graph.get(f"/v1.0/sites/{sid}/lists").json()["value"]]
    assert "Agents" in titles and temp_list.title in titles
    assert graph.get(f"/v1.0/sites/{sid}/lists/{temp_list.title}").json()["id"] == temp_list.id
    url: str | None = f"/v1.0/sites/{sid}/lists/{temp_list.id}/items?expand=fields&$top=3"
    pages: list[list[dict[str, Any]]] = []
    while url:
        r = graph.get(url)
        assert r.status_code == 200, r.text
        pages.append(r.json()["value"])
        url = r.json().get("@odata.nextLink")
        assert url is None or (url.startswith(emulator.base_url + "/v1.0/") and "$skiptoken=" in url)
    assert [len(p) for p in pages] == [3, 3, 1]
    items = [it for p in pages for it in p]
    assert [it["id"] for it in items] == [str(i) for i in range(1, 8)]
    first = items[0]
    assert first["fields"]["UPN"] == "agent1@contoso.com" and first["fields"]["id"] == "1"
    assert first["@odata.etag"] == first["eTag"] == first["fields"]["@odata.etag"]
    assert first["@odata.etag"].endswith(',1"')
    assert "Team" not in items[1]["fields"]  # empty columns are left out, as Graph does


def test_expand_with_select_and_filters(graph: httpx.Client, emulator: EmulatorServer, temp_list: SpList) -> None:
    items = f"/v1.0/sites/{site_id(emulator)}/lists/{temp_list.id}/items"
    r = graph.get(items, params={"$expand": "fields(select=UPN,Title)", "$top": "2"})
    assert set(r.json()["value"][0]["fields"]) == {"@odata.etag", "UPN", "Title"}
    no_fields = graph.get(items, params={"$top": "1"}).json()["value"][0]
    assert "fields" not in no_fields
    flt = {"expand": "fields", "$filter": "fields/UPN eq 'agent5@contoso.com'"}
    refused = graph.get(items, params=flt)
    assert refused.status_code == 400 and "HonorNonIndexedQueriesWarningMayFailRandomly" in refused.text
    found = graph.get(items, params=flt, headers=PREFER).json()["value"]
    assert [it["id"] for it in found] == ["5"]
    temp_list.indexed_columns.add("UPN")
    assert graph.get(items, params=flt).status_code == 200  # indexed: no header needed
    assert graph.get(items, params={"$top": "0"}).status_code == 400


def test_select_narrows_the_items_own_properties(graph: httpx.Client, emulator: EmulatorServer,
                                                 temp_list: SpList) -> None:
    items = f"/v1.0/sites/{site_id(emulator)}/lists/{temp_list.id}/items"
    r = graph.get(items, params={"$select": "id,eTag", "$expand": "fields($select=UPN)", "$top": "2"})
    first = r.json()["value"][0]
    assert set(first) == {"@odata.etag", "id", "eTag", "fields"} and set(first["fields"]) == {"@odata.etag", "UPN"}
    assert "%24select=id%2CeTag" in r.json()["@odata.nextLink"] or "$select=id,eTag" in r.json()["@odata.nextLink"]


def test_patch_fields_with_etags(graph: httpx.Client, emulator: EmulatorServer, temp_list: SpList) -> None:
    item = f"/v1.0/sites/contoso.sharepoint.com:/sites/contoso-agents:/lists/{temp_list.title}/items/4"
    etag = graph.get(item).json()["eTag"]
    ok = graph.patch(f"{item}/fields", json={"Team": "Blue"}, headers={"If-Match": etag})
    assert ok.status_code == 200, ok.text
    assert ok.json()["Team"] == "Blue" and ok.json()["@odata.etag"].endswith(',2"')
    assert temp_list.items[4].fields["Team"] == "Blue" and temp_list.items[4].version == 2
    stale = graph.patch(f"{item}/fields", json={"Team": "Green"}, headers={"If-Match": etag})
    assert stale.status_code == 412
    assert stale.json()["error"]["code"] == "preconditionFailed"
    assert "eTag mismatch" in stale.json()["error"]["message"]
    assert temp_list.items[4].fields["Team"] == "Blue"
    unknown = graph.patch(f"{item}/fields", json={"Colour": "x"})
    assert unknown.status_code == 400 and unknown.json()["error"]["message"] == "Field 'Colour' is not recognized"
    assert graph.patch(f"{item}/fields", json={"Team": "Green"}, headers={"If-Match": "*"}).status_code == 200
    fields = graph.get(f"{item}/fields").json()
    assert fields["Team"] == "Green" and fields["UPN"] == "agent4@contoso.com"


def test_create_and_delete_items(graph: httpx.Client, emulator: EmulatorServer, temp_list: SpList) -> None:
    items = f"/v1.0/sites/{site_id(emulator)}/lists/{temp_list.id}/items"
    created = graph.post(items, json={"fields": {"Title": "New", "UPN": "new@contoso.com"}})
    assert created.status_code == 201 and created.json()["id"] == "8"
    assert created.json()["fields"]["UPN"] == "new@contoso.com"
    assert graph.delete(f"{items}/8").status_code == 204 and 8 not in temp_list.items
    assert graph.get(f"{items}/8").status_code == 404


def test_permissions_and_budget(http: httpx.Client, emulator: EmulatorServer, temp_list: SpList) -> None:
    items = f"/v1.0/sites/{site_id(emulator)}/lists/{temp_list.id}/items"
    reader = {"Authorization": f"Bearer {app_only(emulator, {'Sites.Read.All'})}"}
    assert http.get(items, headers=reader).status_code == 200
    denied = http.patch(f"{items}/1/fields", json={"Team": "x"}, headers=reader)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "Authorization_RequestDenied"
    nothing = {"Authorization": f"Bearer {app_only(emulator, {'User.Read.All'})}"}
    assert http.get(items, headers=nothing).status_code == 403
    before = emulator.state.stats.requests["graph.listitems"]
    http.get(items, headers=reader)
    assert emulator.state.stats.requests["graph.listitems"] - before == 1


def test_app_only_secret_token_reads_here_but_not_over_sharepoint_rest(http: httpx.Client,
                                                                       emulator: EmulatorServer) -> None:
    tok = emulator.state.tokens.issue_access(tenant_id=CONTOSO, client_id=APP, permissions={"Sites.ReadWrite.All"},
                                             audience=emulator.base_url, via_secret=True).token
    auth = {"Authorization": f"Bearer {tok}"}
    rest = http.get("/sites/contoso-agents/_api/web/lists/GetByTitle('Agents')/items", headers=auth)
    assert rest.status_code == 401 and rest.json()["error_description"] == "Unsupported app only token."
    graph = http.get("/v1.0/sites/127.0.0.1:/sites/contoso-agents:/lists/Agents/items?expand=fields", headers=auth)
    assert graph.status_code == 200 and len(graph.json()["value"]) == 100 and "@odata.nextLink" in graph.json()


def test_patch_fields_inside_graph_batch(graph: httpx.Client, emulator: EmulatorServer, temp_list: SpList) -> None:
    base = f"/sites/{site_id(emulator)}/lists/{temp_list.id}/items"
    stale = '"00000000-0000-0000-0000-000000000000,1"'
    r = graph.post("/v1.0/$batch", json={"requests": [
        {"id": "1", "method": "PATCH", "url": f"{base}/1/fields", "headers": {"Content-Type": "application/json"},
         "body": {"Team": "Batch"}},
        {"id": "2", "method": "PATCH", "url": f"{base}/2/fields",
         "headers": {"Content-Type": "application/json", "If-Match": stale}, "body": {"Team": "Batch"}},
    ]})
    assert r.status_code == 200, r.text
    status = {x["id"]: x["status"] for x in r.json()["responses"]}
    assert status == {"1": 200, "2": 412}
    assert temp_list.items[1].fields["Team"] == "Batch" and temp_list.items[2].fields["Team"] is None
