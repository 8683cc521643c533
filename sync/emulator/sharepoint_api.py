"""SharePoint REST resources under ``/_api``: contextinfo, web, lists, list items (read and write).

Handlers take an authenticated, admitted ``SpCall`` and return an ``SpResult``; the HTTP
route (sharepoint.py) and ``$batch`` (sharepoint_batch.py) share them, so a sub-request
of a batch behaves exactly like the same request sent alone.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from . import sharepoint_json as sj
from .model import ListItem, Site, SpList, Tenant
from .sharepoint_query import LIST_VIEW_THRESHOLD, FilterError, compile_filter, parse_skiptoken, sort_items
from .tokens import TokenInfo

__all__ = ["SpCall", "SpResult", "classify", "dispatch", "sp_error_result"]

INVALID_QUERY = "-1, Microsoft.SharePoint.Client.InvalidClientQueryException"
ARGUMENT = "-2147024809, System.ArgumentException"
THROTTLED = "-2147024860, Microsoft.SharePoint.SPQueryThrottledException"
TOP_MAX = 5000

_LIST = (r"web/lists(?:/getbytitle\('(?P<title>(?:[^']|'')*)'\)|/getbyid\('(?P<gid>[^']*)'\)"
         r"|\((?:guid)?'(?P<gid2>[^']*)'\))")
_LIST_RE = re.compile(_LIST + r"(?P<rest>/.*)?", re.IGNORECASE)
_ITEM_RE = re.compile(r"/(?:items\((?P<a>\d+)\)|getitembyid\((?P<b>\d+)\))(?P<parent>/parentlist)?", re.IGNORECASE)


@dataclass
class SpCall:
    method: str  # effective verb: GET, POST, MERGE, DELETE (X-HTTP-Method applied)
    path: str  # decoded path after /_api/, no leading slash, e.g. "web/lists/GetByTitle('Agents')/items"
    query: dict[str, str]  # decoded query parameters
    headers: dict[str, str]  # lower-case names
    body: bytes
    origin: str  # scheme://host:port of this emulator
    tenant: Tenant
    site: Site
    token: TokenInfo | None
    fmt: str  # sj.VERBOSE | sj.MINIMAL | sj.NOMETADATA

    @property
    def api(self) -> str:
        return f"{self.origin}{self.site.path}/_api"

    def q(self, name: str) -> str | None:
        want = name.lstrip("$").lower()
        for k, v in self.query.items():
            if k.lstrip("$").lower() == want:
                return v
        return None


@dataclass
class SpResult:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None


def sp_error_result(fmt: str, status: int, code: str, message: str,
                    headers: dict[str, str] | None = None) -> SpResult:
    key = "error" if fmt == sj.VERBOSE else "odata.error"
    body = {key: {"code": code, "message": {"lang": "en-US", "value": message}}}
    ctype = sj.CONTENT_TYPES[sj.VERBOSE if fmt == sj.VERBOSE else sj.NOMETADATA]
    return SpResult(status, body, dict(headers or {}), ctype)


def _ok(call: SpCall, body: Any, status: int = 200, headers: dict[str, str] | None = None) -> SpResult:
    return SpResult(status, body, dict(headers or {}), sj.CONTENT_TYPES[call.fmt])


def _err(call: SpCall, status: int, code: str, message: str) -> SpResult:
    return sp_error_result(call.fmt, status, code, message)


@dataclass
class _Target:
    kind: str  # contextinfo | batch | web | lists | list | items | item | unknown
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
    m = _LIST_RE.fullmatch(p)
    if not m:
        return _Target("unknown")
    key = ("title", m["title"].replace("''", "'")) if m["title"] is not None else ("id", m["gid"] or m["gid2"])
    rest = (m["rest"] or "").rstrip("/")
    if not rest:
        return _Target("list", key)
    if rest.lower() == "/items":
        return _Target("items", key)
    im = _ITEM_RE.fullmatch(rest)
    if im:
        return _Target("list" if im["parent"] else "item", key, int(im["a"] or im["b"]))
    return _Target("unknown", key)


def classify(path: str, method: str) -> tuple[str, bool]:
    """(endpoint name for the stats, whether it writes)."""
    t = _target(path)
    writes = method not in ("GET", "HEAD") and t.kind in ("items", "item")
    name = {"items": "items.add" if writes else "items", "unknown": "other"}.get(t.kind, t.kind)
    if t.kind == "item" and writes:
        name = "item.delete" if method == "DELETE" else "item.update"
    return f"sharepoint.{name}", writes


async def dispatch(call: SpCall) -> SpResult:
    t = _target(call.path)
    if t.kind == "contextinfo":
        return _contextinfo(call) if call.method == "POST" else _method_not_allowed(call)
    if t.kind == "web":
        return _read_only(call) or _web(call)
    if t.kind == "lists":
        return _read_only(call) or _lists(call)
    if t.kind == "unknown" or t.list_key is None:
        return _err(call, 404, INVALID_QUERY, f"Cannot find resource for the request {call.path.split('/')[-1]}.")
    lst = _find_list(call.site, t.list_key)
    if lst is None:
        return _list_missing(call, t.list_key)
    if t.kind == "list":
        if t.item_id is not None and t.item_id not in lst.items:
            return _item_missing(call)
        return _read_only(call) or _list(call, lst)
    if t.kind == "items":
        if call.method == "GET":
            return _items(call, lst)
        return _add_item(call, lst) if call.method == "POST" else _method_not_allowed(call)
    assert t.item_id is not None
    item = lst.items.get(t.item_id)
    if item is None:
        return _item_missing(call)
    if call.method == "GET":
        checked = _project(call, sj.item_properties(lst, item))
        return checked if isinstance(checked, SpResult) else _ok(call, _item_entity(call, lst, item))
    if call.method == "DELETE":
        return _delete_item(call, lst, item)
    if call.method in ("MERGE", "PATCH", "PUT"):
        return _update_item(call, lst, item)
    return _method_not_allowed(call)


def _read_only(call: SpCall) -> SpResult | None:
    return None if call.method == "GET" else _method_not_allowed(call)


def _method_not_allowed(call: SpCall) -> SpResult:
    return _err(call, 405, INVALID_QUERY, f"The HTTP method '{call.method}' is not supported for this resource.")


def _find_list(site: Site, key: tuple[str, str]) -> SpList | None:
    if key[0] == "title":
        return site.list_by_title(key[1])
    want = key[1].strip("{}").lower()
    return next((lst for lst in site.lists.values() if lst.id.lower() == want), None)


def _list_missing(call: SpCall, key: tuple[str, str]) -> SpResult:
    if key[0] == "title":
        return _err(call, 404, "-2130575322, Microsoft.SharePoint.SPException",
                    f"List '{key[1]}' does not exist at site with URL '{call.origin}{call.site.path}'.")
    return _err(call, 404, "-1, System.ArgumentException",
                "List does not exist.\n\nThe page you selected contains a list that does not exist.  "
                "It may have been deleted by another user.")


def _item_missing(call: SpCall) -> SpResult:
    return _err(call, 404, ARGUMENT, "Item does not exist. It may have been deleted by another user.")


def _select(call: SpCall) -> list[str] | None:
    raw = call.q("select")
    return [s.strip() for s in raw.split(",") if s.strip()] if raw else None


def _project(call: SpCall, props: dict[str, Any]) -> dict[str, Any] | SpResult:
    try:
        return sj.select(props, _select(call))
    except KeyError as exc:
        return _err(call, 400, INVALID_QUERY, f"The field or property '{exc.args[0]}' does not exist.")


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
        return _ok(call, {"d": {"GetContextWebInformation": {
            "__metadata": {"type": "SP.ContextWebInformation"}, **props}}})
    if call.fmt == sj.MINIMAL:
        props = {"odata.metadata": f"{call.api}/$metadata#SP.ContextWebInformation", **props}
    return _ok(call, props)


def _web(call: SpCall) -> SpResult:
    props = _project(call, sj.web_properties(call.origin, call.site))
    if isinstance(props, SpResult):
        return props
    return _ok(call, sj.entity(call.fmt, props, uri=f"{call.api}/Web", type_name="SP.Web",
                               metadata_url=f"{call.api}/$metadata#SP.ApiData.Webs"))


def _list_uri(call: SpCall, lst: SpList) -> str:
    return f"{call.api}/Web/Lists(guid'{lst.id}')"


def _list(call: SpCall, lst: SpList) -> SpResult:
    props = _project(call, sj.list_properties(call.site, lst))
    if isinstance(props, SpResult):
        return props
    return _ok(call, sj.entity(call.fmt, props, uri=_list_uri(call, lst), type_name="SP.List", etag='"1"',
                               metadata_url=f"{call.api}/$metadata#SP.ApiData.Lists"))


def _lists(call: SpCall) -> SpResult:
    rows = []
    for lst in call.site.lists.values():
        props = _project(call, sj.list_properties(call.site, lst))
        if isinstance(props, SpResult):
            return props
        rows.append((props, _list_uri(call, lst), "SP.List", '"1"'))
    return _ok(call, sj.collection(call.fmt, rows, None, f"{call.api}/$metadata#SP.ApiData.Lists"))


def _item_uri(call: SpCall, lst: SpList, item: ListItem) -> str:
    return f"{_list_uri(call, lst)}/Items({item.id})"


def _item_entity(call: SpCall, lst: SpList, item: ListItem) -> Any:
    props = _project_item(call, lst, item)
    return sj.entity(call.fmt, props, uri=_item_uri(call, lst, item), type_name=lst.entity_type_name,
                     etag=item.etag, metadata_url=_items_metadata(call, lst))


def _items_metadata(call: SpCall, lst: SpList) -> str:
    return f"{call.api}/$metadata#SP.ListData.{lst.title.replace(' ', '_x0020_')}ListItems"


def resolve_column(lst: SpList, name: str) -> str | None:
    """A column name as SharePoint matches it in ``$filter``/``$orderby`` (exact first, then any case)."""
    if name.lower() == "id":
        return "Id"
    known = ["Title", *lst.columns, "Created", "Modified"]
    if name in known:
        return name
    return next((c for c in known if c.lower() == name.lower()), None)


def _items(call: SpCall, lst: SpList) -> SpResult:
    raw_top = call.q("top")
    try:
        top = 100 if raw_top is None else int(raw_top)
    except ValueError:
        return _err(call, 400, INVALID_QUERY, f"The value '{raw_top}' is not a valid value for $top.")
    if top < 0 or top > TOP_MAX:
        return _err(call, 400, INVALID_QUERY,
                    f"The value '{raw_top}' for $top is out of range; it must be between 0 and {TOP_MAX}.")

    def resolve(name: str) -> str:
        col = resolve_column(lst, name)
        if col is None:
            raise FilterError(f"Column '{name}' does not exist. It may have been deleted by another user.",
                              "unknown_field", name)
        return col

    order: list[tuple[str, bool]] = []
    try:
        flt = compile_filter(call.q("filter") or "", resolve) if (call.q("filter") or "").strip() else None
        for part in (call.q("orderby") or "").split(","):
            words = part.split()
            if words:
                order.append((resolve(words[0]), len(words) > 1 and words[1].lower() == "desc"))
    except FilterError as exc:
        code = "-2146232832, Microsoft.SharePoint.SPException" if exc.kind == "unknown_field" else INVALID_QUERY
        return _err(call, 400, code, str(exc))
    checked = _project(call, sj.item_properties(lst, ListItem(0, {})))
    if isinstance(checked, SpResult):
        return checked
    used = (flt.columns if flt else set()) | {c for c, _ in order}
    if len(lst.items) > LIST_VIEW_THRESHOLD and any(c != "Id" and c not in lst.indexed_columns for c in used):
        return _err(call, 500, THROTTLED,
                    "The attempted operation is prohibited because it exceeds the list view threshold.")
    rows = sort_items(lst, order)
    if flt:
        rows = [it for it in rows if flt.predicate(it)]
    rows = _after_skiptoken(call, rows, order)
    page, more = rows[:top], len(rows) > top
    body = sj.collection(
        call.fmt,
        [(_project_item(call, lst, it), _item_uri(call, lst, it), lst.entity_type_name, it.etag) for it in page],
        _next_link(call, page[-1].id) if more and page else None, _items_metadata(call, lst))
    return _ok(call, body)


def _project_item(call: SpCall, lst: SpList, item: ListItem) -> dict[str, Any]:
    """Item properties under ``$select`` (callers validated ``$select`` already)."""
    try:
        return sj.select(sj.item_properties(lst, item), _select(call))
    except KeyError:
        return sj.item_properties(lst, item)


def _after_skiptoken(call: SpCall, rows: list[ListItem], order: list[tuple[str, bool]]) -> list[ListItem]:
    tok = parse_skiptoken(call.q("skiptoken"))
    raw = tok.get("p_ID") or call.query.get("p_ID")  # an unencoded "&p_ID=" lands as its own parameter
    if not raw or not raw.isdigit():
        return rows
    last = int(raw)
    if not order or order[0][0] == "Id":
        desc = bool(order) and order[0][1]
        return [it for it in rows if (it.id < last if desc else it.id > last)]
    ids = [it.id for it in rows]
    return rows[ids.index(last) + 1:] if last in ids else [it for it in rows if it.id > last]


def _next_link(call: SpCall, last_id: int) -> str:
    params: list[tuple[str, str]] = [("$skiptoken", f"Paged=TRUE&p_ID={last_id}")]
    for name in ("top", "select", "filter", "orderby", "expand"):
        v = call.q(name)
        if v is not None:
            params.append((f"${name}", v))
    path = quote(call.path.strip("/"), safe="/()'$,:=")
    return f"{call.api}/{path}?{urlencode(params, quote_via=quote, safe='')}"


def _parse_write(call: SpCall, lst: SpList) -> dict[str, Any] | SpResult:
    try:
        doc = json.loads(call.body or b"{}")
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        return _err(call, 400, INVALID_QUERY, "Invalid JSON. A token was not recognized in the JSON content.")
    meta = doc.pop("__metadata", None)
    verbose_body = "odata=verbose" in call.headers.get("content-type", "").lower()
    if meta is not None or verbose_body:
        tname = meta.get("type") if isinstance(meta, dict) else None
        if tname is None:
            return _err(call, 400, INVALID_QUERY, "A type name was not provided in the payload (__metadata.type).")
        if tname != lst.entity_type_name:
            return _err(call, 400, INVALID_QUERY,
                        f"A type named '{tname}' could not be resolved by the model. When a model is available, "
                        "each type name must resolve to a valid type.")
    writable = {"Title", *lst.columns}
    for name in doc:
        if name not in writable:
            return _err(call, 400, INVALID_QUERY,
                        f"The property '{name}' does not exist on type '{lst.entity_type_name}'. "
                        "Make sure to only use property names that are defined by the type.")
    return doc


def _precondition(call: SpCall, item: ListItem) -> SpResult | None:
    want = call.headers.get("if-match")
    if want is None or want.strip() == "*":
        return None
    tag = want.strip()
    tag = tag[2:] if tag.startswith("W/") else tag
    if tag == item.etag:
        return None
    return _err(call, 412, "-1, Microsoft.SharePoint.Client.ClientServiceException",
                f"The request ETag value '{want.strip()}' does not match the object's ETag value '{item.etag}'.")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _add_item(call: SpCall, lst: SpList) -> SpResult:
    doc = _parse_write(call, lst)
    if isinstance(doc, SpResult):
        return doc
    item = lst.add(doc)
    item.created = item.modified = now_iso()
    return _ok(call, _item_entity(call, lst, item), 201, {"ETag": item.etag})


def _update_item(call: SpCall, lst: SpList, item: ListItem) -> SpResult:
    doc = _parse_write(call, lst)
    if isinstance(doc, SpResult):
        return doc
    failed = _precondition(call, item)
    if failed:
        return failed
    item.fields.update(doc)
    item.version += 1
    item.modified = now_iso()
    return SpResult(204, None, {"ETag": item.etag})


def _delete_item(call: SpCall, lst: SpList, item: ListItem) -> SpResult:
    failed = _precondition(call, item)
    if failed:
        return failed
    del lst.items[item.id]
    return SpResult(200, None)
