"""SharePoint ``$batch`` on the wire: LF-only requests in, flat CRLF multipart out, not transactional."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from sync.emulator.model.tenant import SpList
from sync.emulator.server import EmulatorServer
from sync.emulator.sharepoint.batch import parse_batch, render_batch
from sync.emulator.sharepoint.call import SpResult

CONTOSO = "6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"
VERBOSE = "application/json;odata=verbose"


@pytest.fixture()
def temp_list(emulator: EmulatorServer) -> Iterator[SpList]:
    site = emulator.state.world.tenants[CONTOSO].site
    lst = SpList(id=str(uuid.uuid4()), title=f"B{uuid.uuid4().hex[:8]}", columns=["Title", "Team"])
    for i in range(1, 4):
        lst.add({"Title": f"Agent {i}", "Team": "Red"})
    site.lists[lst.title.lower()] = lst
    yield lst
    site.lists.pop(lst.title.lower(), None)


def lf_batch(boundary: str, changeset: str, base: str, lst: SpList, tok: str) -> bytes:
    """A batch as office365 serialises it: own header block, LF only, two blank lines before JSON."""
    items = f"{base}/sites/contoso-agents/_api/Web/lists/GetByTitle('{lst.title}')/items"
    body = json.dumps({"Team": "Green", "__metadata": {"type": lst.entity_type_name}})

    def merge(item: int, etag: str) -> str:
        return (f"--{changeset}\nContent-Type: application/http\nContent-Transfer-Encoding: binary\n\n"
                f"MERGE {items}({item}) HTTP/1.1\nAuthorization:Bearer {tok}\nIF-MATCH:{etag}\n"
                f"Content-Type:{VERBOSE}\nX-HTTP-Method:MERGE\n\n\n{body}\n")

    return (
        f"Content-Type: multipart/mixed; boundary=\"{boundary}\"\nMIME-Version: 1.0\n\n"
        f"--{boundary}\nContent-Type: multipart/mixed; boundary=\"{changeset}\"\nMIME-Version: 1.0\n\n"
        + merge(1, '"1"') + merge(2, '"7"') + f"--{changeset}--\n\n"
        f"--{boundary}\nContent-Type: application/http\nContent-Transfer-Encoding: binary\n\n"
        f"GET {items}(3)?$select=Title HTTP/1.1\nAccept:{VERBOSE}\n\n"
        f"--{boundary}--\n"
    ).encode()


def test_lf_only_batch_gets_a_flat_crlf_answer(http: httpx.Client, emulator: EmulatorServer,
                                               temp_list: SpList) -> None:
    tok = emulator.state.tokens.issue_access(tenant_id=CONTOSO, client_id="batch-test", audience=emulator.base_url,
                                             permissions={"Sites.ReadWrite.All"}, user_upn="svc-presence@contoso.com")
    boundary, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4().hex[:8]}"
    r = http.post("/sites/contoso-agents/_api/$batch",
                  content=lf_batch(boundary, changeset, emulator.base_url, temp_list, tok.token),
                  headers={"Authorization": f"Bearer {tok.token}",
                           "Content-Type": f"multipart/mixed; boundary={boundary}"})
    assert r.status_code == 200, r.text
    m = re.fullmatch(r"multipart/mixed; boundary=(batchresponse_[0-9a-f-]{36})", r.headers["content-type"])
    assert m
    raw = r.content
    assert b"\n" not in raw.replace(b"\r\n", b"")  # CRLF everywhere
    parts = raw.split(f"--{m[1]}".encode())[1:-1]
    assert len(parts) == 3 and b"changesetresponse" not in raw  # flat, one part per request
    statuses = [int(re.search(rb"HTTP/1\.1 (\d{3}) ", p)[1]) for p in parts]  # type: ignore[index]
    assert statuses == [204, 412, 200]
    assert b"ETag: \"2\"" in parts[0]
    got = json.loads(parts[2].split(b"\r\n\r\n", 2)[2])["d"]
    assert set(got) == {"__metadata", "Title"} and got["Title"] == "Agent 3"  # $select honoured
    assert got["__metadata"]["etag"] == '"1"' and got["__metadata"]["type"] == temp_list.entity_type_name
    # Not transactional: the first MERGE stays applied although the second one failed.
    assert [temp_list.items[i].fields["Team"] for i in (1, 2)] == ["Green", "Red"]


def test_batch_without_multipart_content_type_is_refused(http: httpx.Client, emulator: EmulatorServer) -> None:
    tok = emulator.state.tokens.issue_access(tenant_id=CONTOSO, client_id="batch-test", audience=emulator.base_url,
                                             permissions={"Sites.ReadWrite.All"}, user_upn="svc-presence@contoso.com")
    r = http.post("/sites/contoso-agents/_api/$batch", json={"requests": []},
                  headers={"Authorization": f"Bearer {tok.token}", "Accept": VERBOSE})
    assert r.status_code == 400 and "multipart/mixed" in r.json()["error"]["message"]["value"]


def test_parse_accepts_crlf_bodies_and_urls_with_spaces() -> None:
    body = (b"--b1\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
            b"GET https://h/sites/s/_api/web/lists/GetByTitle('My List')/items HTTP/1.1\r\nAccept: x\r\n\r\n"
            b"--b1--\r\n")
    [sub] = parse_batch("multipart/mixed; boundary=b1", body)
    assert (sub.method, sub.url, sub.headers, sub.body) == (
        "GET", "https://h/sites/s/_api/web/lists/GetByTitle('My List')/items", {"accept": "x"}, b"")


def test_render_writes_status_lines_and_headers() -> None:
    data, ctype = render_batch([SpResult(204, None, {"ETag": '"3"'}), SpResult(404, {"e": 1}, {}, "application/json")])
    boundary = ctype.split("boundary=")[1]
    assert data.endswith(f"--{boundary}--\r\n".encode())
    assert b"HTTP/1.1 204 No Content\r\nETag: \"3\"\r\n\r\n" in data
    assert b"HTTP/1.1 404 Not Found\r\nCONTENT-TYPE: application/json\r\n\r\n{\"e\":1}\r\n" in data
