"""One account's door to Microsoft Graph: tokens, budgets, retries, error translation, paging, $batch."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from ..errors import PermanentGraphError, TransientGraphError
from ..http import Pacer, note_response, parse_retry_after, retrying, sanitize_url
from .shapes import ShapeBook

__all__ = ["Counters", "GraphClient", "TokenSource"]

log = logging.getLogger(__name__)

TokenSource = Callable[[bool], Awaitable[str]]  # force_refresh -> bearer token


@dataclass
class Counters:
    requests: int = 0
    throttled: int = 0

    def snapshot(self) -> tuple[int, int]:
        return self.requests, self.throttled


def _error_detail(resp: httpx.Response) -> tuple[str, str, str]:
    """(code, message, request-id) from a Graph error body, tolerating non-JSON bodies."""
    rid = resp.headers.get("request-id", "")
    try:
        err = resp.json().get("error", {})
    except (ValueError, AttributeError):
        return "", resp.text[:200], rid
    if not isinstance(err, dict):
        return "", str(err)[:200], rid
    inner = err.get("innerError") or err.get("innererror") or {}
    return str(err.get("code", "")), str(err.get("message", "")), rid or str(inner.get("request-id", ""))


@dataclass
class GraphClient:
    account_id: str
    graph_url: str  # e.g. https://graph.microsoft.com (no /v1.0)
    token: TokenSource
    http: httpx.AsyncClient
    budgets: dict[str, Pacer] = field(default_factory=dict)  # bucket -> budget (or Retry-After gate)
    counters: Counters = field(default_factory=Counters)
    attempts: int = 6
    # More clients for many calls at once: httpcore's pool scans all of its connections for every request it
    # places, so 46 calls in flight on one pool of 46 connections cost far more CPU than on 6 pools of 8.
    lanes: tuple[httpx.AsyncClient, ...] = ()
    shapes: ShapeBook = None  # type: ignore[assignment]  # the account's request shapes; one of its own if None

    def __post_init__(self) -> None:
        if self.shapes is None:
            self.shapes = ShapeBook(self.account_id)

    @property
    def root(self) -> str:
        return self.graph_url.rstrip("/") + "/v1.0"

    def url(self, path: str) -> str:
        return path if path.startswith("https://") else self.root + "/" + path.lstrip("/")

    async def send(self, method: str, path: str, *, body: Any = None, bucket: str = "directory",
                   headers: dict[str, str] | None = None, lane: int = 0, raw: bytes | None = None) -> httpx.Response:
        """One HTTP attempt; 2xx returned, everything else raised as a GraphError. ``body`` goes as JSON,
        ``raw`` as it is (give its Content-Type in ``headers``)."""
        budget = self.budgets.get(bucket)
        # Everything that may wait (the token above all: a refresh takes a round trip) happens before the budget
        # lets the request go, so nothing stands between its go and its bytes: a request that waited for a token
        # after its go could leave after another request's 429, before that 429's Retry-After has passed.
        hdrs = {"Authorization": "Bearer " + await self.token(False)}
        if headers:
            hdrs.update(headers)
        ticket = await budget.acquire() if budget is not None else None
        throttled: bool | None = None
        try:
            resp = await self._send(method, path, body, hdrs, lane, raw)
            throttled = resp.status_code in (429, 503)
        finally:
            if budget is not None:
                budget.settle(ticket, throttled)
        if resp.status_code < 300:
            return resp
        await self._raise_for(resp, method, self.url(path), bucket)
        raise AssertionError("unreachable")

    async def _send(self, method: str, path: str, body: Any, hdrs: dict[str, str], lane: int,
                    raw: bytes | None = None) -> httpx.Response:
        url = self.url(path)
        content = raw
        if body is not None:
            content = orjson.dumps(body)
            hdrs["Content-Type"] = "application/json"
        t0 = time.perf_counter()
        self.counters.requests += 1
        try:
            http = self.lanes[lane % len(self.lanes)] if self.lanes else self.http
            resp = await http.request(method, url, content=content, headers=hdrs)
        except httpx.TransportError as exc:
            note_response(url, 0, self.account_id)
            raise TransientGraphError(f"{method} {sanitize_url(url)} failed: {type(exc).__name__}",
                                      retry_after=None) from exc
        note_response(url, resp.status_code, self.account_id)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s -> %s in %.0f ms (request-id %s)", method, sanitize_url(url), resp.status_code,
                      (time.perf_counter() - t0) * 1000, resp.headers.get("request-id", "-"))
        return resp

    async def _raise_for(self, resp: httpx.Response, method: str, url: str, bucket: str) -> None:
        code, message, rid = _error_detail(resp)
        where = f"{method} {sanitize_url(url)}"
        if resp.status_code == 429 or resp.status_code in (500, 502, 503, 504):
            ra = parse_retry_after(resp.headers.get("Retry-After"))
            if resp.status_code == 429:
                self.counters.throttled += 1
            if resp.status_code in (429, 503) and ra:  # a busy 503's Retry-After binds later calls as well
                budget = self.budgets.get(bucket)
                if budget is not None:
                    budget.pause(ra, throttled=resp.status_code == 429)
            raise TransientGraphError(f"{where}: HTTP {resp.status_code} {code} {message}".strip(),
                                      retry_after=ra, request_id=rid, status=resp.status_code)
        if resp.status_code == 401:
            await self.token(True)  # drop the cached token; the retry takes a fresh one
            raise TransientGraphError(f"{where}: HTTP 401 {code}: {message}", retry_after=0.0,
                                      request_id=rid, status=401)
        raise PermanentGraphError(f"{where}: HTTP {resp.status_code} {code}: {message}",
                                  status=resp.status_code, code=code, request_id=rid)

    async def call(self, method: str, path: str, *, body: Any = None, bucket: str = "directory",
                   headers: dict[str, str] | None = None, deadline: float | None = None, lane: int = 0) -> Any:
        """``send`` with the retry policy; returns the decoded JSON body (None for 204)."""
        async for attempt in retrying(self.attempts, deadline):
            with attempt:
                resp = await self.send(method, path, body=body, bucket=bucket, headers=headers, lane=lane)
                if resp.status_code == 204 or not resp.content:
                    return None
                try:
                    return orjson.loads(resp.content)
                except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
                    raise TransientGraphError(f"{method} {sanitize_url(self.url(path))}: malformed JSON "
                                              f"in a {resp.status_code} response", retry_after=None) from exc
        raise AssertionError("unreachable")

    async def pages(self, path: str, *, headers: dict[str, str] | None = None,
                    bucket: str = "directory") -> AsyncIterator[dict[str, Any]]:
        """Every page of a collection, following ``@odata.nextLink``; the last page may hold a deltaLink."""
        url: str | None = path
        while url:
            page = await self.call("GET", url, headers=headers, bucket=bucket)
            yield page
            url = page.get("@odata.nextLink")

    async def batch_once(self, requests: list[dict[str, Any]], bucket: str = "directory") -> dict[str, dict[str, Any]]:
        """Send up to 20 sub-requests in one ``$batch``, once: every item's answer by id, whatever its status.

        For writes: nothing is re-sent here, so an item the server accepted is never applied twice. A failed
        envelope raises (TransientGraphError for 429/5xx/transport, PermanentGraphError otherwise).
        """
        if len(requests) > 20:
            raise ValueError("a Graph $batch holds at most 20 requests")
        resp = await self.send("POST", "$batch", body={"requests": requests}, bucket=bucket)
        try:
            reply = orjson.loads(resp.content)
        except ValueError as exc:  # orjson.JSONDecodeError is a ValueError
            raise TransientGraphError(f"POST {sanitize_url(self.url('$batch'))}: malformed JSON in a "
                                      f"{resp.status_code} response", retry_after=None) from exc
        out: dict[str, dict[str, Any]] = {}
        for item in reply.get("responses", []) if isinstance(reply, dict) else []:
            if isinstance(item, dict) and "id" in item:
                out[str(item["id"])] = item
                if int(item.get("status", 0)) == 429:
                    self.counters.throttled += 1
        return out

    async def batch(self, requests: list[dict[str, Any]], bucket: str = "directory",
                    attempts: int | None = None) -> dict[str, dict[str, Any]]:
        """Run up to 20 sub-requests in ``$batch``; throttled or failed-transient items are re-sent
        (after the longest Retry-After) until they succeed or the retry policy gives up."""
        if len(requests) > 20:
            raise ValueError("a Graph $batch holds at most 20 requests")
        pending = {r["id"]: r for r in requests}
        done: dict[str, dict[str, Any]] = {}
        async for attempt in retrying(attempts or self.attempts):
            with attempt:
                reply = await self.call("POST", "$batch", body={"requests": list(pending.values())},
                                        bucket=bucket)
                waits: list[float] = []
                for item in reply.get("responses", []):
                    status = int(item.get("status", 0))
                    if status == 429 or status >= 500:
                        if status == 429:
                            self.counters.throttled += 1
                        ra = parse_retry_after((item.get("headers") or {}).get("Retry-After"))
                        waits.append(ra or 0.0)
                        continue
                    done[item["id"]] = item
                    pending.pop(item["id"], None)
                if pending:
                    raise TransientGraphError(f"$batch: {len(pending)} item(s) throttled or failed",
                                              retry_after=max(waits) if waits else None)
        return done

