"""The Agent list through SharePoint REST with office365-rest-python-client, for delegated tokens.

office365 is synchronous (requests), so each operation runs in a worker thread. Reads page
through the whole list (lists past the 5,000-item view threshold are read by Id pages); writes
are MERGE updates sent in ``$batch`` (one round trip per 100 items, the library's batch size).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from office365.runtime.client_request_exception import ClientRequestException
from office365.sharepoint.client_context import ClientContext
from office365.sharepoint.listitems.listitem import ListItem

from .errors import PermanentGraphError, TransientGraphError
from .http import parse_retry_after, retrying
from .models import AgentRow, WriteResult

__all__ = ["SharePointRoster"]

log = logging.getLogger(__name__)

PAGE_SIZE = 5000


def _translate(exc: Exception, what: str) -> Exception:
    if isinstance(exc, ClientRequestException):
        resp = getattr(exc, "response", None)
        status = getattr(resp, "status_code", 0) or 0
        if status in (429, 500, 502, 503, 504):
            ra = parse_retry_after(resp.headers.get("Retry-After")) if resp is not None else None
            return TransientGraphError(f"SharePoint {what}: HTTP {status}", retry_after=ra, status=status)
        if status == 401:
            return TransientGraphError(f"SharePoint {what}: HTTP 401 (token refused)", retry_after=0.0, status=401)
        return PermanentGraphError(f"SharePoint {what}: HTTP {status}: {exc}", status=status, code="",
                                   request_id="")
    if isinstance(exc, requests.RequestException):
        return TransientGraphError(f"SharePoint {what}: {type(exc).__name__}", retry_after=None)
    return exc


@dataclass
class SharePointRoster:
    site_url: str
    list_title: str
    upn_column: str
    token: Callable[[], Mapping[str, Any]]  # sync: {"access_token", "token_type", "expires_in"}
    ca_bundle: str  # a PEM path (office365 passes it as requests' per-request verify)
    attempts: int = 5
    requests_made: int = 0  # every HTTP request sent, counted by the session's response hook

    def __post_init__(self) -> None:
        # One session for every operation: connections are reused across cycles, and its response hook counts
        # requests exactly (contextinfo included). trust_env off: no proxy from the environment; the CA bundle
        # is passed per request, so REQUESTS_CA_BUNDLE cannot override it.
        self._session = requests.Session()
        self._session.trust_env = False
        self._session.hooks["response"].append(self._count)

    def close(self) -> None:
        self._session.close()

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.requests_made += 1

    def _ctx(self) -> ClientContext:
        return ClientContext(self.site_url).with_access_token(lambda: dict(self.token())).with_transport(
            verify=self.ca_bundle, session=self._session)

    async def _run(self, what: str, fn: Callable[[], Any], attempts: int | None = None) -> Any:
        async for attempt in retrying(attempts or self.attempts):
            with attempt:
                try:
                    return await asyncio.to_thread(fn)
                except Exception as exc:
                    translated = _translate(exc, what)
                    if translated is exc:
                        raise
                    if getattr(translated, "status", None) == 401:
                        invalidate = getattr(self.token, "invalidate", None)
                        if invalidate is not None:
                            invalidate()  # a revoked token stays in MSAL's cache until it expires
                    raise translated from exc
        raise AssertionError("unreachable")

    def _read_sync(self) -> list[tuple[int, Any, str | None, dict[str, Any]]]:
        ctx = self._ctx()
        lst = ctx.web.lists.get_by_title(self.list_title)
        items = lst.items.select(["Id", self.upn_column]).get_all(page_size=PAGE_SIZE).execute_query()
        out = []
        for it in items:
            props = it.properties
            etag = (props.get("__metadata") or {}).get("etag") if isinstance(props.get("__metadata"), dict) else None
            out.append((int(props["Id"]), props.get(self.upn_column), etag, props))
        return out

    async def read(self) -> list[AgentRow]:
        rows = await self._run("read of the Agent list", self._read_sync)
        return sorted((AgentRow(i, None if raw is None else str(raw), etag, dict(props))
                       for i, raw, etag, props in rows), key=lambda r: r.item_id)

    def _write_sync(self, updates: Mapping[int, Mapping[str, str]]) -> int:
        ctx = self._ctx()
        lst = ctx.web.lists.get_by_title(self.list_title).select(["ListItemEntityTypeFullName", "Id"]).get()
        ctx.execute_query()
        type_name = lst.properties["ListItemEntityTypeFullName"]
        for item_id, values in updates.items():
            item: ListItem = lst.get_item_by_id(item_id)
            item._entity_type_name = type_name  # one $batch instead of a type lookup per item
            for k, v in values.items():
                item.set_property(k, v)
            item.update()
        ctx.execute_batch()
        return len(updates)

    async def write(self, updates: Mapping[int, Mapping[str, str]]) -> WriteResult:
        if not updates:
            return WriteResult()
        n = await self._run("write-back to the Agent list", lambda: self._write_sync(updates), attempts=2)
        return WriteResult(written=n)
