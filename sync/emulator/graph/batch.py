"""JSON batching: ``POST /$batch`` runs up to ``limits.batch_max_requests`` Graph requests in one call.

Each item goes through the same router as a direct call (``in_batch=True``), so it is
counted, permission-checked and throttled on its own: a throttled item comes back as a
429 item with its ``Retry-After`` inside the 200 envelope. ``dependsOn`` orders items;
an item whose prerequisite failed gets 424. The envelope itself is 400 only when the
batch is malformed (as Graph does). The fault switch ``batch_item_429_rate`` answers that share
of items with a 429 item without running them, as Graph does when a workload behind the batch is
busy; a client that sends the same item again before its ``Retry-After`` counts as a violation.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ..faults.layer import FaultConfig, site_aliases
from .common import CONTENT_TYPE, Reject, add
from .router import GraphRequest, GraphResponse, GraphRouter, error, throttled

__all__ = ["register"]

_METHODS = {"GET", "POST", "PATCH", "PUT", "DELETE"}


def register(router: GraphRouter) -> None:
    async def batch(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        return await run_batch(req, router)

    # The envelope has no budget of its own ("batch" is no bucket): its items are throttled one by one.
    add(router, "POST", r"/\$batch", "graph.batch", batch, bucket="batch")


def _bad(message: str) -> Reject:
    return Reject(400, "BadRequest", message)


def _validate(req: GraphRequest) -> list[dict[str, Any]]:
    body = req.body
    items = body.get("requests") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        raise _bad("Invalid batch payload format.")
    if len(items) > req.state.limits.batch_max_requests:
        raise _bad("Number of requests inside batch exceeds the limit.")
    ids: set[str] = set()
    for it in items:
        if not isinstance(it, dict) or not all(isinstance(it.get(k), str) and it.get(k) for k in ("id", "method", "url")):
            raise _bad("Invalid batch payload format.")
        if it["id"] in ids:
            raise _bad("Request Id must be unique within the batch.")
        ids.add(it["id"])
        headers = it.get("headers")
        if headers is not None and not isinstance(headers, dict):
            raise _bad("Invalid batch payload format.")
        if it.get("body") is not None and not any(k.lower() == "content-type" for k in (headers or {})):
            raise _bad(f"Write request id : {it['id']} does not contain Content-Type header or body.")
    for it in items:
        deps = it.get("dependsOn") or []
        if not isinstance(deps, list) or any(d not in ids or d == it["id"] for d in deps):
            raise _bad(f"Request id {it['id']} has an invalid dependsOn.")
    return items


def _order(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Items with their prerequisites first; 400 on a dependency cycle."""
    done: set[str] = set()
    out: list[dict[str, Any]] = []
    pending = list(items)
    while pending:
        ready = [it for it in pending if all(d in done for d in it.get("dependsOn") or [])]
        if not ready:
            raise _bad("The dependsOn of the batch requests form a cycle.")
        for it in ready:
            out.append(it)
            done.add(it["id"])
        pending = [it for it in pending if it["id"] not in done]
    return out


def _split_url(url: str) -> tuple[str, dict[str, str]] | None:
    """Path (decoded, relative to /v1.0) and query of an item URL; None if it leaves v1.0."""
    parts = urlsplit(url)
    path = parts.path
    if parts.scheme or parts.netloc:
        if not path.lower().startswith("/v1.0/"):
            return None
        path = path[len("/v1.0"):]
    path = "/" + path.lstrip("/")
    query: dict[str, str] = {}
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        query.setdefault(k, v)
    return unquote(path), query


def _item_body(raw: Any) -> Any:
    if isinstance(raw, str):  # Graph also accepts a base64-encoded body
        try:
            return json.loads(base64.b64decode(raw, validate=True))
        except (binascii.Error, ValueError):
            return json.loads(raw)
    return raw


async def _run_item(req: GraphRequest, router: GraphRouter, it: dict[str, Any]) -> GraphResponse:
    method = it["method"].upper()
    target = _split_url(it["url"])
    if method not in _METHODS or target is None:
        return error(400, "BadRequest", f"Invalid request URL or method for request id {it['id']}.")
    path, query = target
    if path.rstrip("/").lower() == "/$batch":
        return error(400, "BadRequest", "Nested batch requests are not supported.")
    try:
        body = _item_body(it.get("body"))
    except ValueError:
        return error(400, "BadRequest", "Unable to read JSON request payload.")
    sub = GraphRequest(method=method, path=path, query=query,
                       headers={str(k).lower(): str(v) for k, v in (it.get("headers") or {}).items()},
                       body=body, base_url=req.base_url, token=req.token, tenant=req.tenant, state=req.state,
                       arrived_at=req.arrived_at,
                       in_batch=True)
    resp = await router.dispatch(sub)
    return resp


def _injected_429(req: GraphRequest, it: dict[str, Any]) -> GraphResponse | None:
    """The fault layer's 429 for this item, or None to run it; counts early comebacks as violations."""
    cfg = req.state.faults
    url = "/v1.0/" + str(it.get("url", "")).lstrip("/").split("?")[0]
    if not isinstance(cfg, FaultConfig) or not cfg.applies("/v1.0/$batch", url, *site_aliases(req.state, url)):
        return None
    body = json.dumps(it.get("body"), sort_keys=True, separators=(",", ":"))
    key = f"{req.token.client_id}|{req.tenant.tenant_id}|{it['method'].upper()}|{it['url']}|{body}"
    early, retry_after = cfg.batch_item(key, req.arrived_at)
    stats = req.state.stats
    if early is not None:
        stats.violation("graph $batch item", (req.token.client_id, req.tenant.tenant_id, it["url"]), *early)
    if retry_after is None:
        return None
    stats.throttled += 1
    stats.faults_injected["throttle_for" if cfg.throttle_remaining() > 0 else "batch_item_429"] += 1
    return throttled(retry_after, req)


async def run_batch(req: GraphRequest, router: GraphRouter) -> GraphResponse:
    items = _validate(req)
    results: dict[str, GraphResponse] = {}
    for it in _order(items):
        failed = [d for d in it.get("dependsOn") or [] if not 200 <= results[d].status < 300]
        if failed:
            results[it["id"]] = error(424, "FailedDependency",
                                      f"Request {it['id']} depends on request {failed[0]}, which failed.")
        else:
            results[it["id"]] = _injected_429(req, it) or await _run_item(req, router, it)
    responses = []
    for it in items:
        r = results[it["id"]]
        headers = {"Content-Type": CONTENT_TYPE if r.status < 400 else "application/json", **r.headers}
        responses.append({"id": it["id"], "status": r.status, "headers": headers, "body": r.body})
    return GraphResponse(200, {"responses": responses})
