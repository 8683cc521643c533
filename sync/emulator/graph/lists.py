"""Graph's list route: ``/v1.0/sites/...`` sites, lists and list items (fields read and write).

This is how app-only tokens minted from a client secret reach list data (SharePoint REST
refuses them). Sites are addressed by path (``/sites/{host}:/sites/x[:]``; ``host`` is the
site's real host name, e.g. contoso.sharepoint.com, or this emulator's own host, with or
without port) or by composite id ``host,siteCollectionGuid,webGuid``. A token sees only its
own tenant's site; another tenant's site answers 404 ``itemNotFound``, as Graph hides it.
Requests spend the (app, tenant)'s SharePoint resource units, the budget SharePoint REST uses
(one item or site 1 RU; lists, a list, a page of items or a write 2 RU).
"""

from __future__ import annotations

import base64
import re
from typing import Any
from urllib.parse import quote, urlsplit

from ..model.tenant import ListItem, Site, SpList
from ..sharepoint import entities as sj
from ..sharepoint.items import now_iso, resolve_column
from ..sharepoint.query import LIST_VIEW_THRESHOLD, FilterError, compile_filter, parse_skiptoken, sort_items
from ..sharepoint.rest import READ_PERMISSIONS, WRITE_PERMISSIONS
from . import common
from .common import Reject
from .router import GraphRequest, GraphResponse, GraphRouter

__all__ = ["register"]

TOP_MAX = 5000
_SITE = r"/sites/(?P<site>[^/:]+(?::\d+)?:/[^:]*?|[^/:]+)"
_LIST = _SITE + r":?/lists/(?P<list>[^/]+)"
_ITEM = _LIST + r"/items/(?P<item>\d+)"
_EXPAND = re.compile(r"\s*fields\s*(?:\(\s*\$?select\s*=\s*(?P<sel>[^)]*)\))?\s*", re.IGNORECASE)
_PREFER_NON_INDEXED = "honornonindexedquerieswarningmayfailrandomly"
_NOT_INDEXED = ("Field '{}' cannot be referenced in filter or orderby as it is not indexed. Provide the "
                "'Prefer: HonorNonIndexedQueriesWarningMayFailRandomly' header to allow this, but be warned "
                "that such queries may fail on large lists.")
_READ = tuple(sorted(READ_PERMISSIONS))
_WRITE = tuple(sorted(WRITE_PERMISSIONS))


def register(router: GraphRouter) -> None:
    """Add the list route's handlers; most specific patterns first (the router takes the first match)."""
    def add(method: str, pattern: str, endpoint: str, fn: Any, cost: int, write: bool = False) -> None:
        common.add(router, method, pattern, endpoint, fn, bucket="sharepoint",
                   permissions=_WRITE if write else _READ, cost=cost)

    add("GET", _ITEM + "/fields", "graph.listitem.fields", _get_fields, 1)
    add("PATCH", _ITEM + "/fields", "graph.listitem.update", _patch_fields, 2, write=True)
    add("GET", _ITEM, "graph.listitem", _get_item, 1)
    add("DELETE", _ITEM, "graph.listitem.delete", _delete_item, 2, write=True)
    add("GET", _LIST + "/items", "graph.listitems", _list_items, 2)
    add("POST", _LIST + "/items", "graph.listitem.create", _create_item, 2, write=True)
    add("GET", _LIST, "graph.list", _get_list, 2)
    add("GET", _SITE + r":?/lists", "graph.lists", _get_lists, 2)
    add("GET", _SITE + r":?", "graph.site", _get_site, 1)


# --- lookups ---------------------------------------------------------------------------------------

def _site(req: GraphRequest, m: re.Match[str]) -> Site:
    key = m["site"]
    site = req.tenant.site
    if ":/" in key:
        host, _, path = key.partition(":/")
        host = host.split(":")[0].lower()
        own = {site.hostname.lower(), (urlsplit(req.base_url).hostname or "").lower(), "localhost"}
        if host in own and "/" + path.strip("/").lower() == site.path.lower():
            return site
    else:
        k = key.lower()
        if k == site.id.lower() or k in site.id.lower().split(",")[1:]:
            return site
    raise Reject(404, "itemNotFound", "Requested site could not be found")


def _list(req: GraphRequest, m: re.Match[str]) -> tuple[Site, SpList]:
    site = _site(req, m)
    lst = site.list_by_id_or_title(m["list"])
    if lst is None:
        raise Reject(404, "itemNotFound", "List not found")
    return site, lst


def _item(req: GraphRequest, m: re.Match[str]) -> tuple[Site, SpList, ListItem]:
    site, lst = _list(req, m)
    item = lst.items.get(int(m["item"]))
    if item is None:
        raise Reject(404, "itemNotFound", "Item not found")
    return site, lst, item


# --- JSON ------------------------------------------------------------------------------------------

def _web_url(site: Site) -> str:
    return f"https://{site.hostname}{site.path}"


def _ctx(req: GraphRequest, fragment: str) -> str:
    return f"{req.base_url}/v1.0/$metadata#{fragment}"


def _site_json(site: Site) -> dict[str, Any]:
    return {"createdDateTime": "2026-01-05T08:00:00Z", "description": "", "id": site.id,
            "lastModifiedDateTime": "2026-01-05T08:00:00Z", "name": site.path.rsplit("/", 1)[-1],
            "webUrl": _web_url(site), "displayName": site.display_name,
            "siteCollection": {"hostname": site.hostname}}


def _list_json(site: Site, lst: SpList) -> dict[str, Any]:
    etag = f'"{lst.id},1"'
    return {"@odata.etag": etag, "createdDateTime": "2026-01-05T08:00:00Z", "description": "", "eTag": etag,
            "id": lst.id, "lastModifiedDateTime": "2026-01-05T08:00:00Z", "name": lst.title,
            "webUrl": f"{_web_url(site)}/Lists/{quote(lst.title)}", "displayName": lst.title,
            "parentReference": {"siteId": site.id},
            "list": {"contentTypesEnabled": False, "hidden": False, "template": "genericList"}}


def _etag(lst: SpList, item: ListItem) -> str:
    return f'"{sj.item_guid(lst, item)},{item.version}"'


def _fields(lst: SpList, item: ListItem, select: list[str] | None) -> dict[str, Any]:
    """The fieldValueSet; like Graph, empty (null) columns are left out."""
    values: dict[str, Any] = {"@odata.etag": _etag(lst, item), "id": str(item.id), "ContentType": "Item"}
    for col in ["Title", *[c for c in lst.columns if c != "Title"]]:
        if item.fields.get(col) is not None:
            values[col] = item.fields[col]
    values.update({"Modified": item.modified, "Created": item.created, "AuthorLookupId": "1073741823",
                   "EditorLookupId": "1073741823", "_UIVersionString": f"{item.version}.0", "Attachments": False,
                   "Edit": "", "ItemChildCount": "0", "FolderChildCount": "0"})
    if select is None:
        return values
    want = {s.lower() for s in select}
    return {k: v for k, v in values.items() if k == "@odata.etag" or k.lower() in want}


def _item_json(site: Site, lst: SpList, item: ListItem, fields: list[str] | None | bool) -> dict[str, Any]:
    etag = _etag(lst, item)
    out: dict[str, Any] = {
        "@odata.etag": etag, "createdDateTime": item.created, "eTag": etag, "id": str(item.id),
        "lastModifiedDateTime": item.modified, "webUrl": f"{_web_url(site)}/Lists/{quote(lst.title)}/{item.id}_.000",
        "createdBy": {"user": {"displayName": "System Account"}},
        "lastModifiedBy": {"user": {"displayName": "System Account"}},
        "parentReference": {"id": lst.id, "siteId": site.id},
        "contentType": {"id": sj.ITEM_CONTENT_TYPE_ID, "name": "Item"},
    }
    if fields is not False:
        out["fields"] = _fields(lst, item, None if fields is True else fields)  # type: ignore[arg-type]
    return out


def _expand(req: GraphRequest) -> list[str] | None | bool:
    """False: no fields; True: all fields; a list: ``fields(select=...)``."""
    raw = req.q("expand")
    if not raw:
        return False
    m = _EXPAND.fullmatch(raw)
    if not m:
        raise Reject(400, "invalidRequest", f"Parsing OData Select and Expand failed: Could not find a "
                                              f"property named '{raw.split('(')[0]}'.")
    sel = m["sel"]
    return [s.strip() for s in sel.split(",") if s.strip()] if sel else True


# --- handlers --------------------------------------------------------------------------------------

async def _get_site(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    site = _site(req, m)
    return GraphResponse(200, {"@odata.context": _ctx(req, "sites/$entity"), **_site_json(site)})


async def _get_lists(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    site = _site(req, m)
    return GraphResponse(200, {"@odata.context": _ctx(req, f"sites('{site.id}')/lists"),
                               "value": [_list_json(site, lst) for lst in site.lists.values()]})


async def _get_list(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    site, lst = _list(req, m)
    return GraphResponse(200, {"@odata.context": _ctx(req, f"sites('{site.id}')/lists/$entity"),
                               **_list_json(site, lst)})


async def _get_item(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    site, lst, item = _item(req, m)
    body = _item_json(site, lst, item, _expand(req))
    return GraphResponse(200, {"@odata.context": _ctx(req, f"sites('{site.id}')/lists('{lst.id}')/items/$entity"),
                               **body}, {"ETag": _etag(lst, item)})


async def _get_fields(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    site, lst, item = _item(req, m)
    sel = req.q("select")
    fields = _fields(lst, item, [s.strip() for s in sel.split(",")] if sel else None)
    return GraphResponse(200, {"@odata.context": _fields_ctx(req, site, lst, item), **fields},
                         {"ETag": _etag(lst, item)})


def _fields_ctx(req: GraphRequest, site: Site, lst: SpList, item: ListItem) -> str:
    return _ctx(req, f"sites('{site.id}')/lists('{lst.id}')/items('{item.id}')/fields/$entity")


def _top(req: GraphRequest) -> int:
    raw = req.q("top")
    if raw is None:
        return req.state.limits.page_default
    if not raw.isdigit() or not 1 <= int(raw) <= TOP_MAX:
        raise Reject(400, "invalidRequest", f"Invalid page size specified: '{raw}'. Must be between 1 and "
                                             f"{TOP_MAX} inclusive.")
    return int(raw)


async def _list_items(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    site, lst = _list(req, m)
    fields = _expand(req)
    top = _top(req)

    def resolve(name: str) -> str:
        low = name.lower()
        col = "Id" if low == "id" else (resolve_column(lst, name[7:]) if low.startswith("fields/") else None)
        if col is None:
            raise FilterError(f"Invalid filter clause: field '{name}' is not recognized", "unknown_field", name)
        return col

    order: list[tuple[str, bool]] = []
    try:
        raw_filter = (req.q("filter") or "").strip()
        flt = compile_filter(raw_filter, resolve) if raw_filter else None
        for part in (req.q("orderby") or "").split(","):
            words = part.split()
            if words:
                order.append((resolve(words[0]), len(words) > 1 and words[1].lower() == "desc"))
    except FilterError as exc:
        msg = str(exc) if exc.kind == "unknown_field" else "Invalid filter clause"
        raise Reject(400, "invalidRequest", msg) from exc
    used = (flt.columns if flt else set()) | {c for c, _ in order}
    honour = _PREFER_NON_INDEXED in req.headers.get("prefer", "").lower()
    for col in sorted(used):
        if col != "Id" and col not in lst.indexed_columns and not honour:
            raise Reject(400, "invalidRequest", _NOT_INDEXED.format(col))
    if used - {"Id"} and len(lst.items) > LIST_VIEW_THRESHOLD and "list-threshold" in getattr(
            req.state.faults, "refuse", ()):  # the refuse switch: no index or Prefer header helps
        req.state.stats.faults_injected["refuse_list-threshold"] += 1
        raise Reject(400, "invalidRequest", "The attempted operation is prohibited because it exceeds the list "
                                            "view threshold.")
    rows = sort_items(lst, order)
    if flt:
        rows = [it for it in rows if flt.predicate(it)]
    rows = _after(req, rows)
    page, more = rows[:top], len(rows) > top
    items = [_item_json(site, lst, it, fields) for it in page]
    sel = req.q("select")
    if sel:  # $select on the items' own properties (fields stay as $expand chose); the etag annotation stays
        keep = {s.strip().lower() for s in sel.split(",") if s.strip()} | {"@odata.etag", "fields"}
        items = [{k: v for k, v in it.items() if k.lower() in keep} for it in items]
    body: dict[str, Any] = {"@odata.context": _ctx(req, f"sites('{site.id}')/lists('{lst.id}')/items"),
                            "value": items}
    if more and page:
        body["@odata.nextLink"] = _next_link(req, site, lst, page[-1].id)
    return GraphResponse(200, body)


def _after(req: GraphRequest, rows: list[ListItem]) -> list[ListItem]:
    tok = req.q("skiptoken")
    if not tok:
        return rows
    try:
        decoded = base64.urlsafe_b64decode(tok + "=" * (-len(tok) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        decoded = ""
    last = parse_skiptoken(decoded).get("p_ID", "")
    if not last.isdigit():
        raise Reject(400, "invalidRequest", "Invalid skip token.")
    ids = [it.id for it in rows]
    n = int(last)
    return rows[ids.index(n) + 1:] if n in ids else [it for it in rows if it.id > n]


def _next_link(req: GraphRequest, site: Site, lst: SpList, last_id: int) -> str:
    token = base64.urlsafe_b64encode(f"Paged=TRUE&p_ID={last_id}".encode()).decode().rstrip("=")
    params = [(k, v) for k, v in req.query.items() if k.lstrip("$").lower() != "skiptoken"]
    params.append(("$skiptoken", token))
    query = "&".join(f"{quote(k, safe='$')}={quote(v, safe=',()=$:/')}" for k, v in params)
    return f"{req.base_url}/v1.0/sites/{site.id}/lists/{lst.id}/items?{query}"


def _check_fields(lst: SpList, values: Any) -> dict[str, Any]:
    if not isinstance(values, dict):
        raise Reject(400, "invalidRequest", "Invalid request")
    writable = {"Title", *lst.columns}
    for name in values:
        if name not in writable and not name.startswith("@odata."):
            raise Reject(400, "invalidRequest", f"Field '{name}' is not recognized")
    return {k: v for k, v in values.items() if not k.startswith("@odata.")}


def _precondition(req: GraphRequest, lst: SpList, item: ListItem) -> None:
    want = req.headers.get("if-match")
    if want is None or want.strip() == "*":
        return
    tag = want.strip()
    tag = tag[2:] if tag.startswith("W/") else tag
    if tag.strip('"') != _etag(lst, item).strip('"'):
        raise Reject(412, "preconditionFailed",
                      "The resource has changed since the caller last read it; usually an eTag mismatch")


async def _patch_fields(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    site, lst, item = _item(req, m)
    values = _check_fields(lst, req.body)
    _precondition(req, lst, item)
    lst.record_write(item, values)
    item.version += 1
    item.modified = now_iso()
    return GraphResponse(200, {"@odata.context": _fields_ctx(req, site, lst, item), **_fields(lst, item, None)},
                         {"ETag": _etag(lst, item)})


async def _create_item(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    site, lst = _list(req, m)
    body = req.body if isinstance(req.body, dict) else None
    if body is None:
        raise Reject(400, "invalidRequest", "Invalid request")
    values = _check_fields(lst, body.get("fields", {}))
    item = lst.add(values)
    item.created = item.modified = now_iso()
    return GraphResponse(201, {"@odata.context": _ctx(req, f"sites('{site.id}')/lists('{lst.id}')/items/$entity"),
                               **_item_json(site, lst, item, True)}, {"ETag": _etag(lst, item)})


async def _delete_item(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    _site_, lst, item = _item(req, m)
    _precondition(req, lst, item)
    del lst.items[item.id]
    return GraphResponse(204)
