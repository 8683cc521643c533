"""Graph's ``GET /sites/{site-id}/lists/{list-id}/columns``: the list's columnDefinitions as they are now."""

from __future__ import annotations

import re
from typing import Any

from ..model.columns import Column, list_columns
from .router import GraphRequest, GraphResponse, GraphRouter, error

__all__ = ["register"]

READ = ("Sites.FullControl.All", "Sites.Manage.All", "Sites.Read.All", "Sites.ReadWrite.All", "Sites.Selected")
_GRAPH_TYPE = {"Text": "text", "Note": "text", "Number": "number", "Counter": "number", "DateTime": "dateTime",
               "Boolean": "boolean", "Choice": "choice"}


def register(router: GraphRouter) -> None:
    router.route("GET", r"/sites/(?P<site>[^/]+)/lists/(?P<list>[^/]+)/columns", "graph.list.columns",
                 bucket="sharepoint", permissions=READ, cost=2)(_columns)


def _json(c: Column) -> dict[str, Any]:
    facet = _GRAPH_TYPE.get(c.type, "text")
    out: dict[str, Any] = {"columnGroup": "Custom Columns", "description": "", "displayName": c.name,
                           "enforceUniqueValues": False, "hidden": False, "id": c.id, "indexed": False,
                           "name": c.name, "readOnly": c.read_only, "required": c.name == "Title",
                           facet: {"allowMultipleLines": c.type == "Note", "maxLength": 255} if facet == "text"
                           else {}}
    return out


async def _columns(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    site = req.tenant.site
    key = m["site"].lower()
    if key != site.id.lower() and key not in site.id.lower().split(",")[1:]:
        return error(404, "itemNotFound", "Requested site could not be found")
    lst = site.list_by_id_or_title(m["list"])
    if lst is None:
        return error(404, "itemNotFound", "List not found")
    return GraphResponse(200, {
        "@odata.context": f"{req.base_url}/v1.0/$metadata#sites('{site.id}')/lists('{lst.id}')/columns",
        "value": [_json(c) for c in list_columns(lst)]})
