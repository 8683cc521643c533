"""Columns removed and added through POST /_emulator/lists/columns, seen by REST fields, Graph columns and writes."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator

import httpx
import pytest

from sync.emulator.model.tenant import SpList, Tenant
from sync.emulator.server import EmulatorServer

from ..conftest import CONTOSO

PUBLIC_APP = "22222222-3333-4444-8555-666666666666"
NOMETA = "application/json;odata=nometadata"


@pytest.fixture()
def temp_list(contoso: Tenant) -> Iterator[SpList]:
    lst = SpList(id=str(uuid.uuid4()), title=f"Cols {uuid.uuid4().hex[:6]}", columns=["Title", "UPN", "Team"])
    lst.add({"Title": "Agent 1", "UPN": "agent1@contoso.com", "Team": "Red"})
    contoso.site.lists[lst.title.lower()] = lst
    yield lst
    contoso.site.lists.pop(lst.title.lower(), None)


@pytest.fixture()
def sp(emulator: EmulatorServer, ssl_context: ssl.SSLContext) -> Iterator[httpx.Client]:
    """A client of its own (the graph fixture puts a Graph token on the shared one) with a SharePoint token."""
    http = httpx.Client(base_url=emulator.base_url, verify=ssl_context, timeout=30)
    r = http.post(f"/{CONTOSO}/oauth2/v2.0/token", data={
        "client_id": PUBLIC_APP, "grant_type": "password", "username": "svc-presence@contoso.com",
        "password": "Pr3sence-Sync!2026", "scope": f"{emulator.base_url}/.default"})
    assert r.status_code == 200, r.text
    http.headers.update({"Authorization": f"Bearer {r.json()['access_token']}", "Accept": NOMETA})
    yield http
    http.close()


def test_removed_and_added_columns_show_on_both_wires(sp: httpx.Client, graph: httpx.Client, contoso: Tenant,
                                                       temp_list: SpList) -> None:
    r = sp.post("/_emulator/lists/columns", json={"tenant": "contoso", "list": temp_list.title,
                                                  "remove": ["team"], "add": [{"name": "Shift", "type": "Number"}]})
    assert r.status_code == 200, r.text
    assert [c["name"] for c in r.json()["columns"]] == ["Title", "UPN", "Shift"]
    assert "Team" not in temp_list.items[1].fields

    fields = sp.get(f"/sites/contoso-agents/_api/web/lists/GetByTitle('{temp_list.title}')/fields").json()["value"]
    by_name = {f["InternalName"]: f for f in fields}
    assert "Team" not in by_name and by_name["Shift"]["TypeAsString"] == "Number"
    assert by_name["ID"]["ReadOnlyField"] is True

    cols = graph.get(f"/v1.0/sites/{contoso.site.id}/lists/{temp_list.id}/columns").json()["value"]
    names = [c["name"] for c in cols]
    assert "Team" not in names and "Shift" in names
    assert next(c for c in cols if c["name"] == "Shift")["number"] == {}


def test_writes_to_a_removed_column_fail_on_both_wires(sp: httpx.Client, graph: httpx.Client, contoso: Tenant,
                                                        temp_list: SpList) -> None:
    sp.post("/_emulator/lists/columns", json={"tenant": "contoso", "list": temp_list.title, "remove": ["UPN"]})
    rest = sp.post(f"/sites/contoso-agents/_api/web/lists/GetByTitle('{temp_list.title}')/items(1)",
                   json={"UPN": "x@contoso.com"},
                   headers={"X-HTTP-Method": "MERGE", "If-Match": "*", "Content-Type": "application/json"})
    assert rest.status_code == 400 and "UPN" in rest.text
    patched = graph.patch(f"/v1.0/sites/{contoso.site.id}/lists/{temp_list.id}/items/1/fields",
                          json={"UPN": "x@contoso.com"})
    assert patched.status_code == 400 and "UPN" in patched.json()["error"]["message"]
    fine = graph.patch(f"/v1.0/sites/{contoso.site.id}/lists/{temp_list.id}/items/1/fields", json={"Team": "Blue"})
    assert fine.status_code == 200


def test_bad_column_changes_say_what_is_wrong(http: httpx.Client, temp_list: SpList) -> None:
    def post(**body: object) -> httpx.Response:
        return http.post("/_emulator/lists/columns", json={"tenant": "contoso", "list": temp_list.title, **body})
    assert "no column 'Nope'" in post(remove=["Nope"]).json()["error"]
    assert "already has a column" in post(add=[{"name": "upn"}]).json()["error"]
    assert "not one of" in post(add=[{"name": "X", "type": "Blob"}]).json()["error"]
    assert post(list="No Such List").status_code == 404
