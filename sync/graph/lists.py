"""The Agent list through Graph's list route (``/sites/{host}:/{path}``), for app-only tokens.

SharePoint REST refuses app-only tokens minted from a client secret, so application-permission
accounts read and write the list here: items with ``expand=fields`` page by page, write-back as
``PATCH .../items/{id}/fields`` sent 20 at a time in ``$batch``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from ..errors import TransientGraphError
from ..models import AgentRow, WriteResult
from .client import GraphClient

__all__ = ["GraphListRoster"]

log = logging.getLogger(__name__)


@dataclass
class GraphListRoster:
    client: GraphClient
    site_url: str
    list_title: str
    upn_column: str
    _site_id: str | None = None
    _list_id: str | None = None

    async def _ids(self) -> tuple[str, str]:
        if self._site_id is None or self._list_id is None:
            parts = urlsplit(self.site_url)
            host = parts.hostname or ""
            site = await self.client.call("GET", f"sites/{host}:{quote(parts.path.rstrip('/'))}")
            self._site_id = str(site["id"])
            lst = await self.client.call("GET", f"sites/{self._site_id}/lists/{quote(self.list_title)}?$select=id")
            self._list_id = str(lst["id"])
        return self._site_id, self._list_id

    async def read(self) -> list[AgentRow]:
        site_id, list_id = await self._ids()
        rows: list[AgentRow] = []
        col = self.upn_column
        # Only the UPN column: a 30,000-item list with every column is many megabytes per read.
        path = f"sites/{site_id}/lists/{list_id}/items?$expand=fields($select={quote(col)})&$top=999"
        async for page in self.client.pages(path):
            for item in page.get("value", []):
                fields: dict[str, Any] = item.get("fields") or {}
                raw = fields.get(col)
                rows.append(AgentRow(int(item["id"]), None if raw is None else str(raw),
                                     item.get("eTag"), fields))
        rows.sort(key=lambda r: r.item_id)
        return rows

    async def write(self, updates: Mapping[int, Mapping[str, str]]) -> WriteResult:
        """PATCH each item's fields, 20 per ``$batch``; a throttled batch stops this write-back (the rest stay
        pending for the next one) instead of holding the presence cycle."""
        site_id, list_id = await self._ids()
        result = WriteResult()
        items = list(updates.items())
        for i in range(0, len(items), 20):
            chunk = items[i:i + 20]
            reqs = [{"id": str(item_id), "method": "PATCH",
                     "url": f"/sites/{site_id}/lists/{list_id}/items/{item_id}/fields",
                     "headers": {"Content-Type": "application/json"}, "body": dict(values)}
                    for item_id, values in chunk]
            try:
                replies = await self.client.batch(reqs, bucket="sites", attempts=2)
            except TransientGraphError as exc:
                for item_id, _ in items[i:]:
                    result.failed[item_id] = f"not sent: {exc}"
                break
            for item_id, _ in chunk:
                status = int(replies.get(str(item_id), {}).get("status", 0))
                if 200 <= status < 300:
                    result.written += 1
                else:
                    result.failed[item_id] = f"HTTP {status}"
        return result
