"""List items over SharePoint REST: the query (``$filter``/``$orderby``/``$top``/paging) and the writes."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from ..model.tenant import ListItem, SpList
from . import entities as sj
from .call import INVALID_QUERY, SpCall, SpResult, err, list_uri, ok, project, selected
from .query import LIST_VIEW_THRESHOLD, FilterError, compile_filter, parse_skiptoken, sort_items

__all__ = ["add_item", "delete_item", "item_entity", "list_items", "now_iso", "resolve_column", "update_item"]

THROTTLED = "-2147024860, Microsoft.SharePoint.SPQueryThrottledException"
TOP_MAX = 5000


def _item_uri(call: SpCall, lst: SpList, item: ListItem) -> str:
    return f"{list_uri(call, lst)}/Items({item.id})"


def item_entity(call: SpCall, lst: SpList, item: ListItem) -> Any:
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


def list_items(call: SpCall, lst: SpList) -> SpResult:
    raw_top = call.q("top")
    try:
        top = 100 if raw_top is None else int(raw_top)
    except ValueError:
        return err(call, 400, INVALID_QUERY, f"The value '{raw_top}' is not a valid value for $top.")
    if top < 0 or top > TOP_MAX:
        return err(call, 400, INVALID_QUERY,
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
        return err(call, 400, code, str(exc))
    checked = project(call, sj.item_properties(lst, ListItem(0, {})))
    if isinstance(checked, SpResult):
        return checked
    used = (flt.columns if flt else set()) | {c for c, _ in order}
    strict = "list-threshold" in call.refuse and bool(used - {"Id"})  # the refuse switch: no index helps
    if len(lst.items) > LIST_VIEW_THRESHOLD and (strict or any(c != "Id" and c not in lst.indexed_columns
                                                               for c in used)):
        return err(call, 500, THROTTLED,
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
    return ok(call, body)


def _project_item(call: SpCall, lst: SpList, item: ListItem) -> dict[str, Any]:
    """Item properties under ``$select`` (callers validated ``$select`` already)."""
    try:
        return sj.select(sj.item_properties(lst, item), selected(call))
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
        return err(call, 400, INVALID_QUERY, "Invalid JSON. A token was not recognized in the JSON content.")
    meta = doc.pop("__metadata", None)
    verbose_body = "odata=verbose" in call.headers.get("content-type", "").lower()
    if meta is not None or verbose_body:
        tname = meta.get("type") if isinstance(meta, dict) else None
        if tname is None:
            return err(call, 400, INVALID_QUERY, "A type name was not provided in the payload (__metadata.type).")
        if tname != lst.entity_type_name:
            return err(call, 400, INVALID_QUERY,
                        f"A type named '{tname}' could not be resolved by the model. When a model is available, "
                        "each type name must resolve to a valid type.")
    writable = {"Title", *lst.columns}
    for name in doc:
        if name not in writable:
            return err(call, 400, INVALID_QUERY,
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
    return err(call, 412, "-1, Microsoft.SharePoint.Client.ClientServiceException",
                f"The request ETag value '{want.strip()}' does not match the object's ETag value '{item.etag}'.")


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def add_item(call: SpCall, lst: SpList) -> SpResult:
    doc = _parse_write(call, lst)
    if isinstance(doc, SpResult):
        return doc
    item = lst.add(doc)
    item.created = item.modified = now_iso()
    return ok(call, item_entity(call, lst, item), 201, {"ETag": item.etag})


def update_item(call: SpCall, lst: SpList, item: ListItem) -> SpResult:
    doc = _parse_write(call, lst)
    if isinstance(doc, SpResult):
        return doc
    failed = _precondition(call, item)
    if failed:
        return failed
    lst.record_write(item, doc)
    item.version += 1
    item.modified = now_iso()
    return SpResult(204, None, {"ETag": item.etag})


def delete_item(call: SpCall, lst: SpList, item: ListItem) -> SpResult:
    failed = _precondition(call, item)
    if failed:
        return failed
    del lst.items[item.id]
    return SpResult(200, None)
