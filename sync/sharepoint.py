"""The Agent list through SharePoint REST with office365-rest-python-client, for delegated tokens.

office365 is synchronous (requests), so each operation runs in a worker thread. Reads page
through the whole list (lists past the 5,000-item view threshold are read by Id pages); writes
are MERGE updates sent in ``$batch`` (one round trip per 100 items, the library's batch size), each batch
once: part-level answers are mapped to their items, and throttled items go back to the caller to re-send.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from office365.runtime.client_request_exception import ClientRequestException
from office365.runtime.odata.v3.batch_request import ODataBatchV3Request
from office365.runtime.odata.v3.json_light_format import JsonLightFormat
from office365.runtime.queries.batch import BatchQuery
from office365.runtime.queries.client_query import ClientQuery
from office365.runtime.queries.update_entity import UpdateEntityQuery
from office365.sharepoint.client_context import ClientContext
from office365.sharepoint.listitems.listitem import ListItem
from office365.sharepoint.lists.list import List

from .errors import GraphError, PermanentGraphError, TransientGraphError
from .graph.lists import parse_item_id
from .graph.shapes import ShapeBook, is_refusal
from .http import TRANSIENT_STATUS, note_response, parse_retry_after, retrying
from .models import AgentRow, WriteResult
from .quota import RU_ITEM_UPDATE, ResourceUnitBudget, RetryAfterGate

__all__ = ["SharePointRoster"]

log = logging.getLogger(__name__)

PAGE_SIZE = 5000
BATCH_MAX = 100  # updates per $batch (office365's Limits.BATCH_ITEMS)


class _Held(requests.RequestException):
    """Not sent: a Retry-After this app and tenant got from SharePoint has not passed yet."""

    def __init__(self, left: float) -> None:
        super().__init__(f"held back {left:.2f} s for SharePoint's Retry-After")
        self.left = left


class _RetryAfterSession(requests.Session):
    """Every request of the account's SharePoint calls, office365's own (form digest, paging) included, passes the
    app and tenant's Retry-After gate: none is sent while a Retry-After runs or while the probe after one is out
    (it fails fast with ``_Held`` instead, so no worker thread sleeps), and a 429 or 503 with Retry-After starts
    a pause for all of them."""

    def __init__(self, gate: RetryAfterGate) -> None:
        super().__init__()
        self.gate = gate
        # One request at a time: a second one started beside a request that is about to be throttled would
        # reach SharePoint after that 429, i.e. early. The roster read and the write-back are each a sequence of
        # requests already; they now take turns request by request.
        self._one = threading.Lock()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        with self._one:
            return self._send_one(request, **kwargs)

    def _send_one(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        wait, probe = self.gate.start()
        if wait > 0:
            raise _Held(wait)
        throttled: bool | None = None
        try:
            response = super().send(request, **kwargs)
            throttled = response.status_code in (429, 503)
            if throttled:
                ra = parse_retry_after(response.headers.get("Retry-After"))
                if ra:
                    self.gate.pause(ra)
        finally:
            self.gate.settle(probe, throttled)
        return response


# What office365 raises when an answer is not what it expects (a truncated or garbled body, a batch part missing):
# the answer is at fault, not the request, so it is retried like a dropped connection.
_UNREADABLE = (AssertionError, ValueError, KeyError, IndexError, TypeError, AttributeError)


def _translate(exc: Exception, what: str) -> Exception:
    if isinstance(exc, _UNREADABLE) and not isinstance(exc, requests.RequestException):
        log.warning("SharePoint %s: an answer the client could not read (%s: %s)", what, type(exc).__name__,
                    str(exc)[:200])
        return TransientGraphError(f"SharePoint {what}: an answer the client could not read "
                                   f"({type(exc).__name__})", retry_after=None)
    if isinstance(exc, _Held):
        return TransientGraphError(f"SharePoint {what}: {exc}", retry_after=exc.left)
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
    ru: ResourceUnitBudget | None = None  # SharePoint's RU quota (REST costs at least Graph's 2 RU per update)
    shapes: ShapeBook | None = None  # the account's request shapes (rest-batch); one of its own if None

    def __post_init__(self) -> None:
        # One session for every operation: connections are reused across cycles, and its response hook counts
        # requests exactly (contextinfo included). trust_env off: no proxy from the environment; the CA bundle
        # is passed per request, so REQUESTS_CA_BUNDLE cannot override it.
        self._gate = self.ru.gate if self.ru is not None else RetryAfterGate()
        self._session = _RetryAfterSession(self._gate)
        self._session.trust_env = False
        self._session.hooks["response"].append(self._count)
        if self.shapes is None:
            self.shapes = ShapeBook("")

    def close(self) -> None:
        self._session.close()

    def _count(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.requests_made += 1
        note_response(response.url, response.status_code)

    def _ctx(self) -> ClientContext:
        return ClientContext(self.site_url).with_access_token(lambda: dict(self.token())).with_transport(
            verify=self.ca_bundle, session=self._session)

    async def _run(self, what: str, fn: Callable[[], Any], attempts: int | None = None) -> Any:
        async for attempt in retrying(attempts or self.attempts):
            with attempt:
                await self._unpaused()
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

    async def _unpaused(self) -> None:
        while (left := self._gate.paused_for()) > 0:
            await asyncio.sleep(left + 0.001)

    def _read_sync(self) -> list[tuple[int, Any, str | None, dict[str, Any]]]:
        ctx = self._ctx()
        lst = ctx.web.lists.get_by_title(self.list_title)
        items = lst.items.select(["Id", self.upn_column]).get_all(page_size=PAGE_SIZE).execute_query()
        out = []
        for it in items:
            props = it.properties
            etag = (props.get("__metadata") or {}).get("etag") if isinstance(props.get("__metadata"), dict) else None
            out.append((parse_item_id(props, self.list_title), props.get(self.upn_column), etag, props))
        return out

    async def read(self) -> list[AgentRow]:
        rows = await self._run("read of the Agent list", self._read_sync)
        return sorted((AgentRow(i, None if raw is None else str(raw), etag) for i, raw, etag, _ in rows),
                      key=lambda r: r.item_id)

    async def upload(self, library: str, folder: str, name: str, data: bytes, content_type: str) -> None:
        """Put one file into a document library of the site (replacing it), folders created as needed."""
        def put() -> None:
            ctx = self._ctx()
            target = ctx.web.ensure_folder_path(f"{library}/{folder}" if folder else library)
            target.upload_file(name, data).execute_query()

        await self._run(f"upload of {name} to {library}/{folder}", put)

    def _prepare_write(self) -> tuple[ClientContext, List, str]:
        """A context, the Agent list and its entity type name (so updates need no per-item type lookup)."""
        ctx = self._ctx()
        lst = ctx.web.lists.get_by_title(self.list_title).select(["ListItemEntityTypeFullName", "Id"]).get()
        ctx.execute_query()
        return ctx, lst, str(lst.properties["ListItemEntityTypeFullName"])

    def _send_batch(self, ctx: ClientContext, lst: List, type_name: str,
                    chunk: list[tuple[int, Mapping[str, str]]]) -> WriteResult:
        """One ``$batch`` of MERGE updates, sent once; each part's failure is mapped to its item."""
        owner: dict[int, int] = {}  # id(query) -> item id
        queries: list[ClientQuery[Any]] = []
        for item_id, values in chunk:
            item: ListItem = lst.get_item_by_id(item_id)
            item._entity_type_name = type_name  # one $batch instead of a type lookup per item
            for k, v in values.items():
                item.set_property(k, v)
            qry: ClientQuery[Any] = UpdateEntityQuery(item)  # not queued on the context: this batch is sent below, once
            owner[id(qry)] = item_id
            queries.append(qry)
        request = ctx.pending_request()
        batch = ODataBatchV3Request(self.site_url.rstrip("/"), JsonLightFormat(), transport=request.transport)
        batch.beforeExecute += ctx.authentication_context.authenticate_request
        batch.beforeExecute += request.ensure_form_digest
        out = WriteResult()
        with ctx.collect_batch_failures() as failures:
            batch.execute_query(BatchQuery(ctx, queries))
        for failed_qry, exc in failures:
            item_id = owner[id(failed_qry)]
            resp = getattr(exc, "response", None)
            status = int(getattr(resp, "status_code", 0) or 0)
            if status in TRANSIENT_STATUS or status == 0:
                out.throttle(item_id, parse_retry_after(resp.headers.get("Retry-After")) if resp is not None else None)
            else:
                out.failed[item_id] = f"HTTP {status}: {str(exc)[:300]}"
        out.done.extend(i for i, _ in chunk if i not in out.failed and i not in out.throttled)
        return out

    def _send_single(self, ctx: ClientContext, lst: List, type_name: str,
                     chunk: list[tuple[int, Mapping[str, str]]]) -> WriteResult:
        """The same MERGE updates one request each (a site that refuses ``$batch``), each sent once; after a
        throttled one the rest of the chunk is not sent and comes back throttled too."""
        out = WriteResult()
        for n, (item_id, values) in enumerate(chunk):
            item: ListItem = lst.get_item_by_id(item_id)
            item._entity_type_name = type_name
            for k, v in values.items():
                item.set_property(k, v)
            try:
                item.update()
                ctx.execute_query()
            except Exception as exc:
                why = _translate(exc, f"update of item {item_id}")
                if why is exc:
                    raise
                if isinstance(why, TransientGraphError):
                    for rest_id, _ in chunk[n:]:
                        out.throttle(rest_id, why.retry_after)
                    if why.retry_after:
                        self._gate.pause(why.retry_after)
                    break
                out.failed[item_id] = f"not written: {why}"
                continue
            out.done.append(item_id)
        return out

    async def write(self, updates: Mapping[int, Mapping[str, str]]) -> WriteResult:
        """MERGE each item, at most 100 per ``$batch``, each batch sent once (no retry here): accepted items in
        ``done``, throttled parts or batches in ``throttled`` with their Retry-After, refused parts in
        ``failed``. After a throttled batch the rest are not sent, and come back throttled too."""
        result = WriteResult()
        if not updates:
            return result
        items = list(updates.items())
        await self._unpaused()
        try:
            ctx, lst, type_name = await asyncio.to_thread(self._prepare_write)
        except Exception as exc:
            stop = self._envelope_failure(exc, "write-back to the Agent list")
            _not_sent(result, items, stop)
            return result
        for n in range(0, len(items), BATCH_MAX):
            chunk = items[n:n + BATCH_MAX]
            if self.ru is not None:
                await self.ru.acquire(RU_ITEM_UPDATE * len(chunk))
            else:
                await self._unpaused()
            assert self.shapes is not None
            batched = self.shapes.current("rest-batch") == "rest-batch"
            send = self._send_batch if batched else self._send_single
            try:
                part = await asyncio.to_thread(send, ctx, lst, type_name, chunk)
            except Exception as exc:
                stop = self._envelope_failure(exc, "write-back batch")
                if batched and is_refusal(stop):  # no $batch here: item by item from now on
                    self.shapes.refuse("rest-batch", "rest-batch", stop)
                    try:
                        part = await asyncio.to_thread(self._send_single, ctx, lst, type_name, chunk)
                    except Exception as again:
                        _not_sent(result, items[n:], self._envelope_failure(again, "write-back"))
                        return result
                else:
                    _not_sent(result, items[n:], stop)
                    return result
            result.merge(part)
            if part.throttled:
                if part.retry_after:
                    self._gate.pause(part.retry_after)
                _not_sent(result, items[n + BATCH_MAX:], TransientGraphError(
                    "SharePoint throttled the previous batch", retry_after=part.retry_after))
                break
        result.done.sort()
        return result

    def _envelope_failure(self, exc: Exception, what: str) -> GraphError:
        """A whole request failed: the error to file its items under (re-raised when it is not SharePoint's)."""
        translated = _translate(exc, what)
        if translated is exc or not isinstance(translated, GraphError):
            raise exc
        if getattr(translated, "status", None) == 401:
            invalidate = getattr(self.token, "invalidate", None)
            if invalidate is not None:
                invalidate()  # a revoked token stays in MSAL's cache until it expires
        if isinstance(translated, TransientGraphError) and translated.retry_after:
            self._gate.pause(translated.retry_after)
        return translated


def _not_sent(result: WriteResult, items: list[tuple[int, Mapping[str, str]]], why: GraphError) -> None:
    """File items that were not (or not knowingly) written: throttled if worth re-sending, else failed."""
    for item_id, _ in items:
        if isinstance(why, TransientGraphError):
            result.throttle(item_id, why.retry_after)
        else:
            result.failed[item_id] = f"not written: {why}"
