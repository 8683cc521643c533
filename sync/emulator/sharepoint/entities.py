"""SharePoint REST JSON in its three OData v3 shapes: verbose, minimalmetadata and nometadata.

verbose wraps everything in ``{"d": ...}`` with ``__metadata`` per entity and ``__next``;
the JSON-light shapes use ``value`` and ``odata.nextLink`` (no ``@``, OData v3), and
minimalmetadata adds ``odata.metadata``/``odata.type``/``odata.id``/``odata.etag``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from ..model.tenant import ListItem, Site, SpList

__all__ = [
    "CONTENT_TYPES",
    "VERBOSE",
    "MINIMAL",
    "NOMETADATA",
    "collection",
    "entity",
    "item_guid",
    "item_properties",
    "list_properties",
    "negotiate",
    "web_properties",
]

VERBOSE, MINIMAL, NOMETADATA = "verbose", "minimalmetadata", "nometadata"
CONTENT_TYPES = {
    VERBOSE: "application/json;odata=verbose;charset=utf-8",
    MINIMAL: "application/json;odata=minimalmetadata;streaming=true;charset=utf-8",
    NOMETADATA: "application/json;odata=nometadata;streaming=true;charset=utf-8",
}
ITEM_CONTENT_TYPE_ID = "0x0100B0B3A4E1F2C34D5E8A9B0C1D2E3F4A5B"


def negotiate(accept: str | None) -> str:
    """The answer format for an ``Accept`` header; plain ``application/json`` gets minimalmetadata."""
    a = (accept or "").lower()
    if "odata=verbose" in a:
        return VERBOSE
    if "odata=nometadata" in a:
        return NOMETADATA
    return MINIMAL


def item_guid(lst: SpList, item: ListItem) -> str:
    return str(uuid.uuid5(uuid.UUID(lst.id) if _is_guid(lst.id) else uuid.NAMESPACE_URL, f"item/{item.id}"))


def _is_guid(s: str) -> bool:
    try:
        uuid.UUID(s)
    except ValueError:
        return False
    return True


def item_properties(lst: SpList, item: ListItem) -> dict[str, Any]:
    """Every property of a list item, in SharePoint's order."""
    props: dict[str, Any] = {"FileSystemObjectType": 0, "Id": item.id, "ServerRedirectedEmbedUri": None,
                             "ServerRedirectedEmbedUrl": "", "ContentTypeId": ITEM_CONTENT_TYPE_ID}
    for col in ["Title", *[c for c in lst.columns if c != "Title"]]:
        props[col] = item.fields.get(col)
    props.update({
        "ID": item.id, "Modified": item.modified, "Created": item.created, "AuthorId": 1073741823,
        "EditorId": 1073741823, "OData__UIVersionString": f"{item.version}.0", "Attachments": False,
        "GUID": item_guid(lst, item),
    })
    return props


def list_properties(site: Site, lst: SpList) -> dict[str, Any]:
    return {
        "AllowContentTypes": True, "BaseTemplate": 100, "BaseType": 0, "Created": "2026-01-05T08:00:00Z",
        "Description": "", "EntityTypeName": f"{lst.title.replace(' ', '_x0020_')}List", "Hidden": False,
        "Id": lst.id, "ItemCount": len(lst.items), "LastItemModifiedDate": max(
            (it.modified for it in lst.items.values()), default="2026-01-05T08:00:00Z"),
        "ListItemEntityTypeFullName": lst.entity_type_name, "ParentWebUrl": site.path, "Title": lst.title,
    }


def web_properties(origin: str, site: Site) -> dict[str, Any]:
    return {
        "Created": "2026-01-05T08:00:00Z", "Description": "", "Id": str(uuid.uuid5(uuid.NAMESPACE_URL, site.path)),
        "Language": 1033, "ServerRelativeUrl": site.path, "Title": site.display_name,
        "Url": origin + site.path, "WebTemplate": "STS",
    }


def select(props: dict[str, Any], names: list[str] | None) -> dict[str, Any]:
    """Honour ``$select`` (names matched case-insensitively; ``*`` = all). Unknown names raise KeyError."""
    if not names or "*" in names:
        return props
    out: dict[str, Any] = {}
    by_lower = {k.lower(): k for k in props}
    for name in names:
        if "/" in name:
            continue  # lookup projections ($expand) are not modelled
        key = name if name in props else by_lower.get(name.lower())
        if key is None:
            raise KeyError(name)
        out[key] = props[key]
    return out


def entity(fmt: str, props: dict[str, Any], *, uri: str, type_name: str, etag: str | None = None,
           metadata_url: str | None = None) -> dict[str, Any]:
    """One entity as a full response body (``{"d": {...}}`` in verbose)."""
    if fmt == VERBOSE:
        return {"d": _verbose_entity(props, uri, type_name, etag)}
    if fmt == NOMETADATA:
        return dict(props)
    out: dict[str, Any] = {}
    if metadata_url:
        out["odata.metadata"] = metadata_url + "/@Element"
    out.update(_minimal_annotations(uri, type_name, etag))
    out.update(props)
    return out


def _verbose_entity(props: dict[str, Any], uri: str, type_name: str, etag: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"id": uri, "uri": uri}
    if etag is not None:
        meta["etag"] = etag
    meta["type"] = type_name
    return {"__metadata": meta, **props}


def _minimal_annotations(uri: str, type_name: str, etag: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"odata.type": type_name, "odata.id": uri}
    if etag is not None:
        out["odata.etag"] = etag
    out["odata.editLink"] = uri.split("/_api/", 1)[-1]
    return out


def collection(fmt: str, rows: Sequence[tuple[dict[str, Any], str, str, str | None]], next_link: str | None,
               metadata_url: str) -> dict[str, Any]:
    """A collection body; ``rows`` are ``(props, uri, type_name, etag)``."""
    if fmt == VERBOSE:
        d: dict[str, Any] = {"results": [_verbose_entity(p, u, t, e) for p, u, t, e in rows]}
        if next_link:
            d["__next"] = next_link
        return {"d": d}
    out: dict[str, Any] = {}
    if fmt == MINIMAL:
        out["odata.metadata"] = metadata_url
        out["value"] = [{**_minimal_annotations(u, t, e), **p} for p, u, t, e in rows]
    else:
        out["value"] = [dict(p) for p, _u, _t, _e in rows]
    if next_link:
        out["odata.nextLink"] = next_link
    return out
