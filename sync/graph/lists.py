"""The Agent list through Graph's list route (``/sites/{host}:/{path}``), for app-only tokens.

SharePoint REST refuses app-only tokens minted from a client secret, so application-permission
accounts read and write the list here: items with ``expand=fields`` page by page, write-back as
``PATCH .../items/{id}/fields`` sent 20 at a time in ``$batch``, each batch once (the caller re-sends
what came back throttled, after its Retry-After).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from ..errors import PermanentGraphError, RosterError, TransientGraphError
from ..http import TRANSIENT_STATUS, parse_retry_after, retrying
from ..models import AgentRow, WriteResult
from ..quota import RU_ITEM_UPDATE, ResourceUnitBudget
from .client import GraphClient
from .shapes import is_refusal

__all__ = ["BATCH_MAX", "GraphListRoster", "sort_replies"]

log = logging.getLogger(__name__)

BATCH_MAX = 20  # Graph's $batch limit


@dataclass
class GraphListRoster:
    client: GraphClient
    site_url: str
    list_title: str
    upn_column: str
    ru: ResourceUnitBudget | None = None  # SharePoint's RU quota for this app and tenant; None: not paced here
    concurrency: int = 4  # $batches in flight at once (each still waits for its RUs)
    _site_id: str | None = None
    _list_id: str | None = None
    _drives: dict[str, str] | None = None  # document library name or URL name (lower case) -> drive id

    async def _ids(self) -> tuple[str, str]:
        if self._site_id is None or self._list_id is None:
            parts = urlsplit(self.site_url)
            host = parts.hostname or ""
            site = await self.client.call("GET", f"sites/{host}:{quote(parts.path.rstrip('/'))}", bucket="sites")
            self._site_id = str(site["id"])
            lst = await self.client.call("GET", f"sites/{self._site_id}/lists/{quote(self.list_title)}?$select=id",
                                         bucket="sites")
            self._list_id = str(lst["id"])
        return self._site_id, self._list_id

    async def read(self) -> list[AgentRow]:
        site_id, list_id = await self._ids()
        rows: list[AgentRow] = []
        col = self.upn_column
        # Only the id, the etag and the UPN column: a 30,000-item list with everything is many megabytes per read.
        path = f"sites/{site_id}/lists/{list_id}/items?$select=id,eTag&$expand=fields($select={quote(col)})&$top=999"
        async for page in self.client.pages(path, bucket="sites"):
            for item in page.get("value", []):
                fields: dict[str, Any] = item.get("fields") or {}
                raw = fields.get(col)
                # Only the UPN is kept: the job needs no other column, and 30,000 field dicts cost megabytes.
                rows.append(AgentRow(parse_item_id(item, self.list_title), None if raw is None else str(raw),
                                     item.get("eTag")))
        rows.sort(key=lambda r: r.item_id)
        return rows

    async def upload(self, library: str, folder: str, name: str, data: bytes, content_type: str) -> None:
        """Put one file into a document library of the Agent list's site (replacing it), folders created as
        needed: Graph's simple upload (files up to 250 MB) into the drive whose name or URL is ``library``."""
        site_id, _ = await self._ids()
        if self._drives is None:
            page = await self.client.call("GET", f"sites/{site_id}/drives?$select=id,name,webUrl", bucket="sites")
            self._drives = {}
            for d in page.get("value", []):
                url_name = unquote(str(d.get("webUrl", "")).rstrip("/").rsplit("/", 1)[-1])
                for key in (str(d.get("name", "")), url_name):
                    self._drives.setdefault(key.lower(), str(d["id"]))
        drive = self._drives.get(library.lower())
        if drive is None:
            raise PermanentGraphError(
                f"the site {self.site_url} has no document library '{library}' (it has: "
                f"{', '.join(sorted(self._drives)) or 'none'}); fix Reports/@Library", status=404, code="itemNotFound",
                request_id="")
        if self.ru is not None:
            await self.ru.acquire(RU_ITEM_UPDATE)
        path = "/".join(quote(part) for part in (*folder.split("/"), name) if part)
        async for attempt in retrying(self.client.attempts):
            with attempt:
                await self.client.send("PUT", f"drives/{drive}/root:/{path}:/content", raw=data, bucket="sites",
                                       headers={"Content-Type": content_type})

    async def write(self, updates: Mapping[int, Mapping[str, str]]) -> WriteResult:
        """PATCH each item's fields, 20 per ``$batch``, up to ``concurrency`` batches in flight; each batch is sent
        once. Accepted items land in ``done``, throttled ones in ``throttled`` (re-send them after their
        Retry-After), refused ones in ``failed``; nothing is retried here, so the caller is never held."""
        result = WriteResult()
        if not updates:
            return result
        try:
            site_id, list_id = await self._ids()
        except TransientGraphError as exc:
            for item_id in updates:
                result.throttle(item_id, exc.retry_after)
            return result
        items = list(updates.items())
        chunks = [items[i:i + BATCH_MAX] for i in range(0, len(items), BATCH_MAX)]
        gate = asyncio.Semaphore(max(1, self.concurrency))

        async def one(chunk: list[tuple[int, Mapping[str, str]]]) -> WriteResult:
            async with gate:
                return await self._send_chunk(site_id, list_id, chunk)

        for part in await asyncio.gather(*(one(c) for c in chunks)):
            result.merge(part)
        result.done.sort()
        if result.throttled or result.failed:
            log.debug("write-back: %d done, %d throttled (retry after %.3f s), %d failed", len(result.done),
                      len(result.throttled), result.retry_after or 0.0, len(result.failed))
        return result

    async def _send_chunk(self, site_id: str, list_id: str,
                          chunk: list[tuple[int, Mapping[str, str]]]) -> WriteResult:
        """One ``$batch`` of at most 20 PATCHes, paced by the RU budget and sent once."""
        if self.ru is not None:
            await self.ru.acquire(RU_ITEM_UPDATE * len(chunk))
        reqs = [{"id": str(item_id), "method": "PATCH",
                 "url": f"/sites/{site_id}/lists/{list_id}/items/{item_id}/fields",
                 "headers": {"Content-Type": "application/json"}, "body": dict(values)}
                for item_id, values in chunk]
        ids = [item_id for item_id, _ in chunk]
        if self.client.shapes.current("batch") != "batch":
            return await self._send_single(reqs, ids)
        try:
            replies = await self.client.batch_once(reqs, bucket="sites")
        except TransientGraphError as exc:  # the envelope: nothing of this batch is known to have landed
            if self.ru is not None and exc.retry_after:
                self.ru.pause(exc.retry_after)
            out = WriteResult()
            for item_id in ids:
                out.throttle(item_id, exc.retry_after)
            return out
        except PermanentGraphError as exc:
            if is_refusal(exc):  # the tenant refuses $batch: these go one by one, now and from now on
                self.client.shapes.refuse("batch", "batch", exc)
                return await self._send_single(reqs, ids)
            return WriteResult(failed={item_id: f"not written: {exc}" for item_id in ids})
        out = sort_replies(ids, replies)
        if self.ru is not None and out.retry_after:
            self.ru.pause(out.retry_after)
        return out

    async def _send_single(self, reqs: list[dict[str, Any]], ids: list[int]) -> WriteResult:
        """The same PATCHes one request each (the RUs are already spent), each sent once: answered as a
        ``$batch`` item would be, so the caller sorts them the same way."""
        async def one(req: dict[str, Any]) -> dict[str, Any]:
            try:
                await self.client.send("PATCH", str(req["url"]), body=req["body"], bucket="sites")
                return {"id": req["id"], "status": 200}
            except TransientGraphError as exc:
                ra = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
                return {"id": req["id"], "status": exc.status or 503, "headers": ra}
            except PermanentGraphError as exc:
                return {"id": req["id"], "status": exc.status,
                        "body": {"error": {"code": exc.code or "", "message": exc.message}}}
        replies = {str(r["id"]): r for r in await asyncio.gather(*(one(q) for q in reqs))}
        out = sort_replies(ids, replies)
        if self.ru is not None and out.retry_after:
            self.ru.pause(out.retry_after)
        return out


def parse_item_id(item: Any, list_title: str) -> int:
    """An item's id as a number, or a RosterError that says which answer was unusable (never a crash)."""
    raw = item.get("id", item.get("Id")) if isinstance(item, Mapping) else None
    text = str(raw) if raw is not None else ""
    if not (text.isascii() and text.isdigit()):
        raise RosterError(f"the '{list_title}' list returned an item without a usable id ({text[:40]!r}); the "
                          "last good copy of the list is kept. Check the list in SharePoint; if it looks right, "
                          "report the answer as a bug.")
    return int(text)


def _header(item: Mapping[str, Any], name: str) -> str | None:
    headers = item.get("headers") or {}
    want = name.lower()
    return next((str(v) for k, v in headers.items() if str(k).lower() == want), None)


def _reason(status: int, item: Mapping[str, Any]) -> str:
    err = (item.get("body") or {}).get("error") if isinstance(item.get("body"), dict) else None
    if isinstance(err, dict):
        return f"HTTP {status} {err.get('code', '')}: {err.get('message', '')}".strip()
    return f"HTTP {status}"


def sort_replies(ids: list[int], replies: Mapping[str, Mapping[str, Any]]) -> WriteResult:
    """Each item's ``$batch`` answer into done (2xx), throttled (429, 5xx, no answer) or failed (other 4xx)."""
    out = WriteResult()
    for item_id in ids:
        item = replies.get(str(item_id))
        if item is None:
            out.throttle(item_id, None)  # no answer: as if the batch had failed for this item
            continue
        status = int(item.get("status", 0) or 0)
        if 200 <= status < 300:
            out.done.append(item_id)
        elif status in TRANSIENT_STATUS or status == 0:
            out.throttle(item_id, parse_retry_after(_header(item, "Retry-After")))
        else:
            out.failed[item_id] = _reason(status, item)
    return out
