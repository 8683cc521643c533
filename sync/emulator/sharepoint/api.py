"""SharePoint REST resources under ``/_api``: which resource a path names, and the small ones.

Handlers take an authenticated, admitted ``SpCall`` and return an ``SpResult``; the HTTP
route (rest.py) and ``$batch`` (batch.py) share them, so a sub-request
of a batch behaves exactly like the same request sent alone. List items live in
items.py.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..model.columns import list_columns
from ..model.tenant import Site, SpList
from . import entities as sj
from .call import ARGUMENT, INVALID_QUERY, SpCall, SpResult, err, list_uri, ok, project
from .files import dispatch_files, is_files_path
from .items import add_item, delete_item, item_entity, list_items, update_item

__all__ = ["classify", "cost", "dispatch"]

_LIST = (r"web/lists(?:/getbytitle\('(?P<title>(?:[^']|'')*)'\)|/getbyid\('(?P<gid>[^']*)'\)"
         r"|\((?:guid)?'(?P<gid2>[^']*)'\))")
_LIST_RE = re.compile(_LIST + r"(?P<rest>/.*)?", re.IGNORECASE)
_ITEM_RE = re.compile(r"/(?:items\((?P<a>\d+)\)|getitembyid\((?P<b>\d+)\))(?P<parent>/parentlist)?", re.IGNORECASE)


@dataclass
class _Target:
    kind: str  # contextinfo | batch | web | lists | list | items | item | files | unknown
    list_key: tuple[str, str] | None = None  # ("title"|"id", value)
    item_id: int | None = None


def _target(path: str) -> _Target:
    p = path.strip("/")
    low = p.lower()
    if low == "contextinfo":
        return _Target("contextinfo")
    if low == "$batch":
        return _Target("batch")
    if low == "web":
        return _Target("web")
    if low == "web/lists":
        return _Target("lists")
    if is_files_path(p):
        return _Target("files")
    m = _LIST_RE.fullmatch(p)
    if not m:
        return _Target("unknown")
    key = ("title", m["title"].replace("''", "'")) if m["title"] is not None else ("id", m["gid"] or m["gid2"])
    rest = (m["rest"] or "").rstrip("/")
    if not rest:
        return _Target("list", key)
    if rest.lower() == "/items":
        return _Target("items", key)
    if rest.lower() == "/fields":
        return _Target("fields", key)
    im = _ITEM_RE.fullmatch(rest)
    if im:
        return _Target("list" if im["parent"] else "item", key, int(im["a"] or im["b"]))
    return _Target("unknown", key)


def classify(path: str, method: str) -> tuple[str, bool]:
    """(endpoint name for the stats, whether it writes)."""
    t = _target(path)
    writes = method not in ("GET", "HEAD") and t.kind in ("items", "item", "files")
    name = {"items": "items.add" if writes else "items", "unknown": "other",
            "files": "files.write" if writes else "files"}.get(t.kind, t.kind)
    if t.kind == "item" and writes:
        name = "item.delete" if method == "DELETE" else "item.update"
    return f"sharepoint.{name}", writes


_READ_COST = {"contextinfo": 1, "web": 1, "lists": 2, "list": 2, "items": 2, "item": 1, "files": 1, "fields": 2, "batch": 0,
              "unknown": 1}


def cost(path: str, method: str) -> int:
    """Resource units a call spends: one item read 1, a page of items or list metadata 2, a write 2;
    a ``$batch`` envelope nothing (its parts are charged one by one)."""
    t = _target(path)
    if method not in ("GET", "HEAD") and t.kind in ("items", "item", "files"):
        return 2
    return _READ_COST[t.kind]


async def dispatch(call: SpCall) -> SpResult:
    t = _target(call.path)
    if t.kind == "contextinfo":
        return _contextinfo(call) if call.method == "POST" else _method_not_allowed(call)
    if t.kind == "web":
        return _read_only(call) or _web(call)
    if t.kind == "lists":
        return _read_only(call) or _lists(call)
    if t.kind == "files":
        return dispatch_files(call)
    if t.kind == "unknown" or t.list_key is None:
        return err(call, 404, INVALID_QUERY, f"Cannot find resource for the request {call.path.split('/')[-1]}.")
    lst = _find_list(call.site, t.list_key)
    if lst is None:
        return _list_missing(call, t.list_key)
    if t.kind == "list":
        if t.item_id is not None and t.item_id not in lst.items:
            return _item_missing(call)
        return _read_only(call) or _list(call, lst)
    if t.kind == "fields":
        return _read_only(call) or _fields(call, lst)
    if t.kind == "items":
        if call.method == "GET":
            return list_items(call, lst)
        return add_item(call, lst) if call.method == "POST" else _method_not_allowed(call)
    assert t.item_id is not None
    item = lst.items.get(t.item_id)
    if item is None:
        return _item_missing(call)
    if call.method == "GET":
        checked = project(call, sj.item_properties(lst, item))
        return checked if isinstance(checked, SpResult) else ok(call, item_entity(call, lst, item))
    if call.method == "DELETE":
        return delete_item(call, lst, item)
    if call.method in ("MERGE", "PATCH", "PUT"):
        return update_item(call, lst, item)
    return _method_not_allowed(call)


def _read_only(call: SpCall) -> SpResult | None:
    return None if call.method == "GET" else _method_not_allowed(call)


def _method_not_allowed(call: SpCall) -> SpResult:
    return err(call, 405, INVALID_QUERY, f"The HTTP method '{call.method}' is not supported for this resource.")


def _find_list(site: Site, key: tuple[str, str]) -> SpList | None:
    if key[0] == "title":
        return site.list_by_title(key[1])
    want = key[1].strip("{}").lower()
    return next((lst for lst in site.lists.values() if lst.id.lower() == want), None)


def _list_missing(call: SpCall, key: tuple[str, str]) -> SpResult:
    if key[0] == "title":
        return err(call, 404, "-2130575322, Microsoft.SharePoint.SPException",
                    f"List '{key[1]}' does not exist at site with URL '{call.origin}{call.site.path}'.")
    return err(call, 404, "-1, System.ArgumentException",
                "List does not exist.\n\nThe page you selected contains a list that does not exist.  "
                "It may have been deleted by another user.")


def _item_missing(call: SpCall) -> SpResult:
    return err(call, 404, ARGUMENT, "Item does not exist. It may have been deleted by another user.")


def _contextinfo(call: SpCall) -> SpResult:
    now = datetime.now(UTC).strftime("%d %b %Y %H:%M:%S -0000")
    url = call.origin + call.site.path
    props: dict[str, Any] = {
        "FormDigestTimeoutSeconds": 1800, "FormDigestValue": f"0x{secrets.token_hex(64).upper()},{now}",
        "LibraryVersion": "16.0.25919.12007", "SiteFullUrl": url,
        "SupportedSchemaVersions": ["14.0.0.0", "15.0.0.0"], "WebFullUrl": url,
    }
    if call.fmt == sj.VERBOSE:
        props["SupportedSchemaVersions"] = {"__metadata": {"type": "Collection(Edm.String)"},
                                            "results": props["SupportedSchemaVersions"]}
        return ok(call, {"d": {"GetContextWebInformation": {
            "__metadata": {"type": "SP.ContextWebInformation"}, **props}}})
    if call.fmt == sj.MINIMAL:
        props = {"odata.metadata": f"{call.api}/$metadata#SP.ContextWebInformation", **props}
    return ok(call, props)


def _web(call: SpCall) -> SpResult:
    props = project(call, sj.web_properties(call.origin, call.site))
    if isinstance(props, SpResult):
        return props
    return ok(call, sj.entity(call.fmt, props, uri=f"{call.api}/Web", type_name="SP.Web",
                               metadata_url=f"{call.api}/$metadata#SP.ApiData.Webs"))


def _list(call: SpCall, lst: SpList) -> SpResult:
    props = project(call, sj.list_properties(call.site, lst))
    if isinstance(props, SpResult):
        return props
    return ok(call, sj.entity(call.fmt, props, uri=list_uri(call, lst), type_name="SP.List", etag='"1"',
                               metadata_url=f"{call.api}/$metadata#SP.ApiData.Lists"))


def _lists(call: SpCall) -> SpResult:
    rows = []
    for lst in call.site.lists.values():
        props = project(call, sj.list_properties(call.site, lst))
        if isinstance(props, SpResult):
            return props
        rows.append((props, list_uri(call, lst), "SP.List", '"1"'))
    return ok(call, sj.collection(call.fmt, rows, None, f"{call.api}/$metadata#SP.ApiData.Lists"))




def _fields(call: SpCall, lst: SpList) -> SpResult:
    """The list's fields (SP.Field): built-in ones and the list's columns, as they are now."""
    rows = []
    for c in list_columns(lst):
        props = project(call, {"Id": c.id, "InternalName": c.name, "StaticName": c.name, "Title": c.name,
                               "EntityPropertyName": c.name, "TypeAsString": c.type, "FieldTypeKind": c.kind,
                               "Hidden": False, "ReadOnlyField": c.read_only, "Required": c.name == "Title"})
        if isinstance(props, SpResult):
            return props
        rows.append((props, f"{list_uri(call, lst)}/Fields(guid'{c.id}')", "SP.Field", None))
    return ok(call, sj.collection(call.fmt, rows, None, f"{call.api}/$metadata#SP.ApiData.Fields"))
