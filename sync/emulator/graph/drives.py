"""The site's document library as a Graph drive ("Documents"): drive listing, simple upload, download, metadata.

- ``GET /sites/{site-id}/drives`` and ``GET /sites/{site-id}/drive`` (also ``/drives/{drive-id}``);
- ``PUT /sites/{site-id}/drive/root:/{path}:/content`` or ``PUT /drives/{drive-id}/root:/{path}:/content``
  (simple upload, missing folders are created as Graph does): 201 with the new driveItem, 200 on replace;
- ``GET .../root:/{path}:/content``: 302 to a pre-authenticated download URL on this same origin
  (``{site}/_layouts/15/download.aspx?UniqueId=...&tempauth=...``), as Graph redirects to SharePoint;
- ``GET .../root:/{path}`` (with or without the closing colon): the driveItem, with
  ``@microsoft.graph.downloadUrl``.

Writes need ``Sites.ReadWrite.All`` or ``Files.ReadWrite.All`` (or more); reads also take the
``.Read.All`` ones. Every call spends SharePoint resource units (read 1, write 2).
"""

from __future__ import annotations

import re
import secrets
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from ..model.library import Library, LibraryError, LibraryFile
from ..model.tenant import Site
from . import common
from .common import Reject
from .router import GraphRequest, GraphResponse, GraphRouter

__all__ = ["DOWNLOAD_LIFETIME", "register"]

READ = ("Files.Read.All", "Files.ReadWrite.All", "Sites.FullControl.All", "Sites.Manage.All", "Sites.Read.All",
        "Sites.ReadWrite.All")
WRITE = ("Files.ReadWrite.All", "Sites.FullControl.All", "Sites.Manage.All", "Sites.ReadWrite.All")
DOWNLOAD_LIFETIME = 3600.0  # seconds a downloadUrl works (Graph: about an hour)
_DRIVE = r"(?:/sites/(?P<site>[^/]+)/drive|/drives/(?P<drive>[^/]+))"
_ITEM = _DRIVE + r"/root:/(?P<path>[^:]+)"


def register(router: GraphRouter) -> None:
    """Add the drive handlers (before the sites-and-lists ones; the first matching pattern wins)."""
    def add(method: str, pattern: str, endpoint: str, fn: Any, cost: int, write: bool = False) -> None:
        async def run(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
            try:
                return await fn(req, m)
            except LibraryError as exc:  # a file or folder name SharePoint refuses
                raise Reject(400, "invalidRequest", str(exc)) from exc
        common.add(router, method, pattern, endpoint, run, bucket="sharepoint",
                   permissions=WRITE if write else READ, cost=cost)

    add("PUT", _ITEM + r":/content", "graph.drive.upload", _upload, 2, write=True)
    add("GET", _ITEM + r":/content", "graph.drive.download", _download, 1)
    add("GET", _ITEM + r":?", "graph.drive.item", _item, 1)
    add("GET", r"/sites/(?P<site>[^/]+)/drives", "graph.drives", _drives, 1)
    add("GET", _DRIVE, "graph.drive", _drive, 1)


def _site(req: GraphRequest, m: re.Match[str]) -> Site:
    site = req.tenant.site
    groups = m.groupdict()
    if groups.get("drive") is not None:
        if groups["drive"] == site.drive_id:
            return site
        raise Reject(404, "itemNotFound", "The drive could not be found.")
    key = m["site"].lower()
    if key == site.id.lower() or key in site.id.lower().split(",")[1:] or key == "root":
        return site
    raise Reject(404, "itemNotFound", "Requested site could not be found")


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _web_url(site: Site, rel: str = "") -> str:
    return f"https://{site.hostname}{site.path}/{quote(site.library.root)}" + (f"/{quote(rel)}" if rel else "")


def _drive_json(site: Site) -> dict[str, Any]:
    lib = site.library
    return {"createdDateTime": _iso(lib.created), "description": "", "id": site.drive_id,
            "lastModifiedDateTime": _iso(max([f.modified for f in lib.files.values()], default=lib.created)),
            "name": lib.title, "webUrl": _web_url(site), "driveType": "documentLibrary",
            "createdBy": {"user": {"displayName": "System Account"}},
            "owner": {"group": {"displayName": site.display_name}}}


def _item_json(req: GraphRequest, site: Site, f: LibraryFile) -> dict[str, Any]:
    folder = f.folder
    return {
        "@odata.context": f"{req.base_url}/v1.0/$metadata#drives('{site.drive_id}')/items/$entity",
        "createdDateTime": _iso(f.created), "eTag": f.etag, "id": _item_id(f),
        "lastModifiedDateTime": _iso(f.modified), "name": f.name, "webUrl": _web_url(site, f.path),
        "cTag": f'"c:{{{f.unique_id.upper()}}},{f.version}"', "size": f.size,
        "createdBy": {"application": {"id": req.token.client_id}},
        "lastModifiedBy": {"application": {"id": req.token.client_id}},
        "parentReference": {"driveType": "documentLibrary", "driveId": site.drive_id,
                            "path": "/drive/root:" + (f"/{folder}" if folder else ""), "siteId": site.id},
        "file": {"mimeType": f.mime_type},
        "fileSystemInfo": {"createdDateTime": _iso(f.created), "lastModifiedDateTime": _iso(f.modified)},
    }


def _item_id(f: LibraryFile) -> str:
    return "01" + f.unique_id.replace("-", "").upper()[:32]


def _file(site: Site, m: re.Match[str]) -> LibraryFile:
    f = site.library.file(m["path"])
    if f is None:
        raise Reject(404, "itemNotFound", "The resource could not be found.")
    return f


def download_url(req: GraphRequest, site: Site, f: LibraryFile) -> str:
    """A pre-authenticated URL on this origin that serves the file's bytes for DOWNLOAD_LIFETIME seconds."""
    lib: Library = site.library
    now = time.monotonic()
    lib.tempauth = {k: v for k, v in lib.tempauth.items() if v[1] > now}
    token = secrets.token_urlsafe(24)
    lib.tempauth[token] = (f.unique_id, now + DOWNLOAD_LIFETIME)
    return (f"{req.base_url}{site.path}/_layouts/15/download.aspx?UniqueId={f.unique_id}"
            f"&tempauth={token}")


async def _drives(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    site = _site(req, m)
    return GraphResponse(200, {"@odata.context": f"{req.base_url}/v1.0/$metadata#drives",
                               "value": [_drive_json(site)]})


async def _drive(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    site = _site(req, m)
    return GraphResponse(200, {"@odata.context": f"{req.base_url}/v1.0/$metadata#drives/$entity",
                               **_drive_json(site)})


async def _upload(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    site = _site(req, m)
    f, created = site.library.put(m["path"], req.raw, datetime.now(UTC), make_folders=True)
    return GraphResponse(201 if created else 200, _item_json(req, site, f))


async def _download(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    site = _site(req, m)
    f = _file(site, m)
    return GraphResponse(302, None, {"Location": download_url(req, site, f)})


async def _item(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    site = _site(req, m)
    f = _file(site, m)
    return GraphResponse(200, {**_item_json(req, site, f), "@microsoft.graph.downloadUrl": download_url(req, site, f)})
