"""The document library as a Graph drive: listing, simple upload, metadata, download through the redirect."""

from __future__ import annotations

import ssl
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest

from sync.emulator.model.tenant import Tenant
from sync.emulator.server import EmulatorServer

from ..conftest import CONTOSO

LIMITED_APP = "11111111-2222-4333-8444-555555555557"  # no Sites permission


@pytest.fixture()
def folder(contoso: Tenant) -> Iterator[str]:
    name = f"exports-{uuid.uuid4().hex[:6]}"
    yield name
    lib = contoso.site.library
    for key in [k for k in lib.files if k.startswith(name + "/")]:
        del lib.files[key]
    for key in [k for k in lib.folders if k == name or k.startswith(name + "/")]:
        del lib.folders[key]


def test_site_has_one_documents_drive(graph: httpx.Client, contoso: Tenant) -> None:
    drives = graph.get(f"/v1.0/sites/{contoso.site.id}/drives")
    assert drives.status_code == 200, drives.text
    [drive] = drives.json()["value"]
    assert drive["name"] == "Documents" and drive["driveType"] == "documentLibrary"
    assert drive["id"] == contoso.site.drive_id and drive["id"].startswith("b!")
    one = graph.get(f"/v1.0/sites/{contoso.site.id}/drive").json()
    assert one["id"] == drive["id"] and one["webUrl"].endswith("/Shared%20Documents")


def test_upload_replace_metadata_and_download(graph: httpx.Client, contoso: Tenant, folder: str,
                                              emulator: EmulatorServer, ssl_context: ssl.SSLContext) -> None:
    site = contoso.site.id
    path = f"/v1.0/sites/{site}/drive/root:/{folder}/today.csv:/content"
    created = graph.put(path, content=b"a,b\n1,2\n", headers={"Content-Type": "text/csv"})
    assert created.status_code == 201, created.text
    item = created.json()
    assert item["name"] == "today.csv" and item["size"] == 8 and item["file"]["mimeType"] == "text/csv"
    assert item["parentReference"]["path"] == f"/drive/root:/{folder}"

    replaced = graph.put(f"/v1.0/drives/{contoso.site.drive_id}/root:/{folder}/today.csv:/content", content=b"x")
    assert replaced.status_code == 200 and replaced.json()["eTag"] != item["eTag"]

    meta = graph.get(f"/v1.0/sites/{site}/drive/root:/{folder}/today.csv")
    assert meta.status_code == 200
    body = meta.json()
    assert body["size"] == 1 and body["lastModifiedDateTime"].endswith("Z") and body["eTag"]

    content = graph.get(f"/v1.0/sites/{site}/drive/root:/{folder}/today.csv:/content")
    assert content.status_code == 302
    location = content.headers["Location"]
    assert urlsplit(location).netloc == urlsplit(emulator.base_url).netloc  # same loopback origin
    bare = httpx.get(location, verify=ssl_context)
    assert bare.status_code == 200 and bare.content == b"x"  # no bearer needed: the URL carries its grant
    forged = httpx.get(location.replace("tempauth=", "tempauth=x"),
                       verify=ssl_context)
    assert forged.status_code == 401

    missing = graph.get(f"/v1.0/sites/{site}/drive/root:/{folder}/nope.csv")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "itemNotFound"


def test_drive_needs_a_sites_or_files_permission(http: httpx.Client, contoso: Tenant) -> None:
    r = http.post(f"/{CONTOSO}/oauth2/v2.0/token", data={
        "client_id": LIMITED_APP, "client_secret": "contoso-limited-secret", "grant_type": "client_credentials",
        "scope": "https://graph.microsoft.com/.default"})
    assert r.status_code == 200, r.text
    auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
    denied = http.get(f"/v1.0/sites/{contoso.site.id}/drives", headers=auth)
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "Authorization_RequestDenied"


def test_read_only_permission_reads_but_does_not_write(graph: httpx.Client, http: httpx.Client, contoso: Tenant,
                                                       emulator: EmulatorServer, folder: str) -> None:
    assert graph.put(f"/v1.0/sites/{contoso.site.id}/drive/root:/{folder}/r.txt:/content",
                     content=b"r").status_code == 201
    reader = emulator.state.tokens.issue_access(tenant_id=CONTOSO, client_id=LIMITED_APP,
                                                permissions={"Files.Read.All"}, audience="https://graph.microsoft.com")
    auth = {"Authorization": f"Bearer {reader.token}"}
    assert http.get(f"/v1.0/sites/{contoso.site.id}/drive/root:/{folder}/r.txt", headers=auth).status_code == 200
    put = http.put(f"/v1.0/sites/{contoso.site.id}/drive/root:/{folder}/r.txt:/content", content=b"w", headers=auth)
    assert put.status_code == 403
