"""The document library over SharePoint REST, driven by office365-rest-python-client's ClientContext."""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import requests
from office365.runtime.client_request_exception import ClientRequestException
from office365.sharepoint.client_context import ClientContext
from office365.sharepoint.files.file import File

from sync.emulator.server import EmulatorServer

CONTOSO = "6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"
PUBLIC_APP = "22222222-3333-4444-8555-666666666666"
SITE = "/sites/contoso-agents"
LIB = f"{SITE}/Shared Documents"


def ropc_token(http: httpx.Client, emulator: EmulatorServer) -> str:
    """A delegated SharePoint token for the service account, from the token endpoint (password grant)."""
    r = http.post(f"/{CONTOSO}/oauth2/v2.0/token", data={
        "client_id": PUBLIC_APP, "grant_type": "password", "username": "svc-presence@contoso.com",
        "password": "Pr3sence-Sync!2026", "scope": f"{emulator.base_url}/.default"})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


@pytest.fixture()
def session() -> Iterator[requests.Session]:
    s = requests.Session()  # closed afterwards, so idle keep-alives do not hold up the server's stop
    yield s
    s.close()


@pytest.fixture()
def ctx(http: httpx.Client, emulator: EmulatorServer, ca_file: Path, session: requests.Session) -> ClientContext:
    token = ropc_token(http, emulator)
    return ClientContext(f"{emulator.base_url}{SITE}").with_access_token(
        lambda: {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
    ).with_transport(verify=str(ca_file), session=session)


@pytest.fixture()
def folder(emulator: EmulatorServer) -> Iterator[str]:
    """A fresh folder name in the library; its files are removed afterwards."""
    name = f"Reports {uuid.uuid4().hex[:6]}"
    yield name
    lib = emulator.state.world.tenants[CONTOSO].site.library
    for key in [k for k in lib.files if k.startswith(name.lower() + "/")]:
        del lib.files[key]
    for key in [k for k in lib.folders if k == name.lower() or k.startswith(name.lower() + "/")]:
        del lib.folders[key]


def test_upload_download_and_metadata_round_trip(ctx: ClientContext, http: httpx.Client, folder: str) -> None:
    data = b"Id,UPN\n1,adele@contoso.com\n"
    lib = ctx.web.get_folder_by_server_relative_url("Shared Documents")
    f = lib.upload_file(f"{folder}/2026/agents.csv", data).execute_query()
    assert f.name == "agents.csv"
    assert f.properties["ServerRelativeUrl"] == f"{LIB}/{folder}/2026/agents.csv"

    url = f"{LIB}/{folder}/2026/agents.csv"
    assert File.open_binary(ctx, url).content == data
    meta = ctx.web.get_file_by_server_relative_url(url).get().execute_query()
    assert meta.length == len(data) and meta.name == "agents.csv"
    assert meta.time_last_modified.year >= 2026
    buf = io.BytesIO()
    ctx.web.get_file_by_server_relative_url(url).download(buf).execute_query()
    assert buf.getvalue() == data

    listing = http.get("/_emulator/library", params={"tenant": "contoso", "path": folder}).json()
    assert [(x["path"], x["size"]) for x in listing["files"]] == [(f"{folder}/2026/agents.csv", len(data))]
    assert f"{folder}/2026" in listing["folders"]


def test_overwrite_replaces_and_refusing_overwrite_fails(ctx: ClientContext, folder: str) -> None:
    lib = ctx.web.ensure_folder_path(f"Shared Documents/{folder}").execute_query()
    assert lib.properties["ServerRelativeUrl"] == f"{LIB}/{folder}"
    first = lib.files.add("a.csv", b"one", True).execute_query()
    second = lib.files.add("a.csv", b"two!", True).execute_query()
    assert first.properties["ETag"] != second.properties["ETag"]
    assert File.open_binary(ctx, f"{LIB}/{folder}/a.csv").content == b"two!"
    with pytest.raises(ClientRequestException) as exc:
        lib.files.add("a.csv", b"three", False).execute_query()
    assert exc.value.response.status_code == 400 and "already exists" in str(exc.value)
    names = [x.name for x in lib.files.get().execute_query()]
    assert names == ["a.csv"]


def test_save_binary_and_missing_file(ctx: ClientContext, folder: str) -> None:
    ctx.web.get_folder_by_server_relative_url("Shared Documents").upload_file(f"{folder}/b.txt", b"old").execute_query()
    assert File.save_binary(ctx, f"{LIB}/{folder}/b.txt", b"new").status_code == 204
    assert File.open_binary(ctx, f"{LIB}/{folder}/b.txt").content == b"new"
    with pytest.raises(ClientRequestException) as exc:
        ctx.web.get_file_by_server_relative_url(f"{LIB}/{folder}/nope.txt").get().execute_query()
    assert exc.value.response.status_code == 404 and "does not exist" in str(exc.value)
    with pytest.raises(ClientRequestException) as exc:
        ctx.web.get_folder_by_server_relative_url(f"Shared Documents/{folder}/none").files.get().execute_query()
    assert exc.value.response.status_code == 404


def test_writes_cost_resource_units_and_need_write_permission(
        http: httpx.Client, emulator: EmulatorServer, folder: str) -> None:
    api = f"{SITE}/_api/web/GetFolderByServerRelativeUrl('Shared Documents')/Files/add(url='c.csv',overwrite=true)"
    token = ropc_token(http, emulator)
    before = http.get("/_emulator/stats").json()["sharepoint_ru_used"].get("contoso", 0)
    ok = http.post(api.replace("('Shared Documents')", f"('Shared Documents/{folder}')"), content=b"x",
                   headers={"Authorization": f"Bearer {token}", "Accept": "application/json;odata=nometadata"})
    assert ok.status_code == 404  # the folder does not exist yet: no folder is made on the way
    made = http.post(f"{SITE}/_api/web/GetFolderByServerRelativeUrl('Shared Documents')/Folders/Add('{folder}')",
                     headers={"Authorization": f"Bearer {token}", "Accept": "application/json;odata=nometadata"})
    assert made.status_code == 200 and made.json()["Name"] == folder
    up = http.post(api.replace("('Shared Documents')", f"('Shared Documents/{folder}')"), content=b"x,y",
                   headers={"Authorization": f"Bearer {token}", "Accept": "application/json;odata=nometadata"})
    assert up.status_code == 200 and up.json()["Length"] == "3"
    after = http.get("/_emulator/stats").json()["sharepoint_ru_used"]["contoso"]
    assert after - before >= 2 + 2 + 2  # the refused write, the folder and the file: 2 RU each

    reader = emulator.state.tokens.issue_access(
        tenant_id=CONTOSO, client_id=PUBLIC_APP, permissions={"Sites.Read.All"}, audience=emulator.base_url,
        user_upn="svc-presence@contoso.com").token
    denied = http.post(api, content=b"x", headers={"Authorization": f"Bearer {reader}"})
    assert denied.status_code == 403
    read = http.get(f"{SITE}/_api/web/GetFileByServerRelativePath(DecodedUrl='{LIB}/{folder}/c.csv')/$value",
                    headers={"Authorization": f"Bearer {reader}"})
    assert read.status_code == 200 and read.content == b"x,y"


def test_one_library_on_both_wires_and_delete(ctx: ClientContext, http: httpx.Client, emulator: EmulatorServer,
                                              folder: str) -> None:
    token = http.post(f"/{CONTOSO}/oauth2/v2.0/token", data={
        "client_id": "11111111-2222-4333-8444-555555555555", "client_secret": "contoso-app-secret-value",
        "grant_type": "client_credentials", "scope": "https://graph.microsoft.com/.default"}).json()["access_token"]
    site_id = emulator.state.world.tenants[CONTOSO].site.id
    put = http.put(f"/v1.0/sites/{site_id}/drive/root:/{folder}/from-graph.csv:/content", content=b"g",
                   headers={"Authorization": f"Bearer {token}"})
    assert put.status_code == 201, put.text
    url = f"{LIB}/{folder}/from-graph.csv"
    assert File.open_binary(ctx, url).content == b"g"  # what Graph wrote, REST reads
    ctx.web.get_file_by_server_relative_url(url).delete_object().execute_query()
    gone = http.get(f"/v1.0/sites/{site_id}/drive/root:/{folder}/from-graph.csv",
                    headers={"Authorization": f"Bearer {token}"})
    assert gone.status_code == 404
