"""Control paths that change the tenant's configuration at run time, and the document library's listing.

- ``POST /_emulator/apps {"tenant", "client_id", "admin_consented"?, "permissions"?}``: consent granted or
  withdrawn, permissions replaced (application ones of a confidential app, delegated ones of a public
  client). Tokens issued afterwards carry what the registration then grants; tokens already issued
  stay valid until revoked or expired, as on Entra.
- ``POST /_emulator/lists/columns {"tenant", "list"?, "remove": [names], "add": [{"name", "type"}]}``:
  columns removed (with their values) or added; REST ``fields``, Graph ``columns`` and writes follow.
- ``GET /_emulator/library?tenant=&path=``: the files at or below a folder of the document library.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from ..model.library import LibraryError
from ..model.tenant import SpList, Tenant
from ..state import EmulatorState
from .common import BadRequest, Handler, find_tenant

__all__ = ["COLUMN_TYPES", "table"]

COLUMN_TYPES = ("Text", "Note", "Number", "DateTime", "Boolean", "Choice")
_BUILT_IN = {"title", "id", "created", "modified"}


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise BadRequest("expected a JSON object")
    return body


async def apps(state: EmulatorState, request: Request, body: Any) -> Any:
    body = _object(body)
    tenant = find_tenant(state, body.get("tenant"))
    if not body.get("client_id"):
        raise BadRequest("client_id is required")
    app = tenant.app(str(body["client_id"]).lower())
    if app is None:
        raise BadRequest(f"no app {body['client_id']!r} is registered in {tenant.name}", 404)
    unknown = set(body) - {"tenant", "client_id", "admin_consented", "permissions"}
    if unknown:
        raise BadRequest(f"unknown field(s): {', '.join(sorted(unknown))}")
    if "admin_consented" in body:
        if not isinstance(body["admin_consented"], bool):
            raise BadRequest("admin_consented must be true or false")
        app.admin_consented = body["admin_consented"]
    if "permissions" in body:
        perms = body["permissions"]
        if not isinstance(perms, list) or not all(isinstance(p, str) and p for p in perms):
            raise BadRequest('permissions must be a list of names, e.g. ["Presence.Read.All"]')
        if app.kind == "confidential":
            app.application_permissions = list(perms)
        else:
            app.delegated_permissions = list(perms)
    granted = app.application_permissions if app.kind == "confidential" else app.delegated_permissions
    return {"tenant": tenant.name, "client_id": app.client_id, "kind": app.kind,
            "admin_consented": app.admin_consented, "permissions": list(granted)}


def _list(tenant: Tenant, key: Any) -> SpList:
    lst = tenant.site.list_by_id_or_title(str(key)) if key else next(iter(tenant.site.lists.values()), None)
    if lst is None:
        raise BadRequest(f"no list {key!r} on {tenant.site.path}", 404)
    return lst


async def columns(state: EmulatorState, request: Request, body: Any) -> Any:
    body = _object(body)
    tenant = find_tenant(state, body.get("tenant"))
    lst = _list(tenant, body.get("list"))
    remove, add = body.get("remove") or [], body.get("add") or []
    if not isinstance(remove, list) or not isinstance(add, list):
        raise BadRequest('"remove" is a list of column names and "add" a list of {"name", "type"}')
    for name in remove:
        found = next((c for c in lst.columns if c.lower() == str(name).lower()), None)
        if found is None:
            raise BadRequest(f"no column {name!r} in {lst.title} (columns: {', '.join(lst.columns)})", 404)
        lst.columns.remove(found)
        lst.column_types.pop(found, None)
        lst.indexed_columns.discard(found)
        for item in lst.items.values():
            item.fields.pop(found, None)
    for col in add:
        if not isinstance(col, dict) or not str(col.get("name") or "").strip():
            raise BadRequest('each column to add needs a "name" (and a "type", default Text)')
        name, kind = str(col["name"]).strip(), str(col.get("type") or "Text")
        if kind not in COLUMN_TYPES:
            raise BadRequest(f"column type {kind!r} is not one of {', '.join(COLUMN_TYPES)}")
        if name.lower() in _BUILT_IN or any(c.lower() == name.lower() for c in lst.columns):
            raise BadRequest(f"{lst.title} already has a column {name!r}")
        lst.columns.append(name)
        lst.column_types[name] = kind
    return {"tenant": tenant.name, "list": lst.title,
            "columns": [{"name": c, "type": lst.column_types.get(c, "Text")} for c in lst.columns]}


async def library(state: EmulatorState, request: Request, body: Any) -> Any:
    q = request.query_params
    tenant = find_tenant(state, q.get("tenant"))
    lib = tenant.site.library
    path = q.get("path") or ""
    try:
        if lib.folder(path) is None:
            raise BadRequest(f"no folder {path!r} in {lib.root} of {tenant.site.path}", 404)
        files = lib.walk(path)
    except LibraryError as exc:
        raise BadRequest(str(exc)) from None
    return {"tenant": tenant.name, "library": lib.root, "drive_id": tenant.site.drive_id,
            "folders": sorted(d for d in lib.folders.values() if d),
            "files": [{"path": f.path, "name": f.name, "size": f.size,
                       "modified": f.modified.strftime("%Y-%m-%dT%H:%M:%SZ"), "etag": f.etag} for f in files]}


def table() -> list[tuple[str, Handler, list[str]]]:
    return [
        ("/_emulator/apps", apps, ["POST"]),
        ("/_emulator/lists/columns", columns, ["POST"]),
        ("/_emulator/library", library, ["GET"]),
    ]
