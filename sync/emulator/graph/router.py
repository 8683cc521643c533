"""A small internal router for Graph v1.0, shared by the HTTP endpoint and ``POST /$batch``.

Handlers see a parsed ``GraphRequest`` and return a ``GraphResponse``; the router checks
permissions (403 Authorization_RequestDenied) and the per-(app, tenant) budget of the
route's bucket (429 TooManyRequests with a fractional Retry-After), and counts requests.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ..faults.refuse import graph_refusal
from ..identity.tokens import TokenInfo
from ..model.tenant import Tenant
from ..responses import graph_error_body
from ..state import EmulatorState

__all__ = ["GraphRequest", "GraphResponse", "GraphRouter", "error"]


@dataclass
class GraphRequest:
    method: str
    path: str  # percent-decoded path after /v1.0, e.g. "/users/abc" ("#" arrives only as %23)
    query: dict[str, str]  # decoded query parameters (first value of each), names as sent
    headers: dict[str, str]  # lower-case names
    body: Any  # parsed JSON body or None
    base_url: str  # scheme://host:port of this emulator, for absolute nextLinks
    token: TokenInfo
    tenant: Tenant
    state: EmulatorState
    in_batch: bool = False
    arrived_at: float | None = None  # monotonic time the call came in (before any modelled latency)
    raw: bytes = b""  # the body as sent (file uploads carry bytes, not JSON)

    def q(self, name: str) -> str | None:
        """Query parameter by name, with or without the ``$`` and in any case."""
        want = name.lstrip("$").lower()
        for k, v in self.query.items():
            if k.lstrip("$").lower() == want:
                return v
        return None


@dataclass
class GraphResponse:
    status: int
    body: Any = None  # JSON, or bytes sent as they are (file content)
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> GraphResponse:
    return GraphResponse(status, graph_error_body(code, message), dict(headers or {}))


Handler = Callable[[GraphRequest, "re.Match[str]"], Awaitable[GraphResponse]]


@dataclass
class _Route:
    method: str
    regex: re.Pattern[str]
    handler: Handler
    endpoint: str
    bucket: str
    permissions: tuple[str, ...]  # any one of these grants access
    cost: int = 1  # SharePoint resource units ("sharepoint" bucket only)


class GraphRouter:
    def __init__(self) -> None:
        self._routes: list[_Route] = []

    def route(self, method: str, pattern: str, endpoint: str, *, bucket: str = "directory",
              permissions: tuple[str, ...] = (), cost: int = 1) -> Callable[[Handler], Handler]:
        """Register ``handler`` for ``method`` and a full-match regex on the decoded path."""
        def deco(fn: Handler) -> Handler:
            self._routes.append(_Route(method.upper(), re.compile(pattern, re.IGNORECASE), fn,
                                       endpoint, bucket, permissions, cost))
            return fn
        return deco

    async def dispatch(self, req: GraphRequest) -> GraphResponse:
        path = req.path.rstrip("/") or "/"
        allowed_methods: list[str] = []
        for r in self._routes:
            m = r.regex.fullmatch(path)
            if not m:
                continue
            if r.method != req.method.upper():
                allowed_methods.append(r.method)
                continue
            st = req.state
            st.stats.count(r.endpoint)
            if r.permissions and not (req.token.permissions & set(r.permissions)):
                return error(403, "Authorization_RequestDenied",
                             "Insufficient privileges to complete the operation.")
            refusal = graph_refusal(getattr(st.faults, "refuse", ()), req.method, path, req.q, req.headers)
            if refusal is not None:  # a tenant that does not support this shape
                st.stats.faults_injected[f"refuse_{refusal[0]}"] += 1
                return error(*refusal[1:])
            if r.bucket == "sharepoint":  # Graph's list route spends SharePoint's resource units
                return await self._sharepoint(r, req, m)
            decision = st.throttle.check(r.bucket, req.token.client_id, req.tenant.tenant_id, req.arrived_at)
            if decision.early is not None:
                st.stats.violation(f"graph {r.bucket}", (req.token.client_id, req.tenant.tenant_id), *decision.early)
            if not decision.allowed:
                st.stats.throttled += 1
                return throttled(decision.retry_after, req)
            if r.bucket == "presence":
                st.stats.presence_window_peak = max(st.stats.presence_window_peak, st.throttle.peak("presence"))
            return await r.handler(req, m)
        if allowed_methods:
            return error(405, "Request_BadRequest",
                         f"The HTTP method '{req.method.upper()}' is not supported for this resource.")
        return error(400, "BadRequest", f"Resource not found for the segment '{path.strip('/').split('/')[0]}'.")


    async def _sharepoint(self, r: _Route, req: GraphRequest, m: re.Match[str]) -> GraphResponse:
        st = req.state
        decision = st.sp_quota.charge(req.token.client_id, req.tenant.tenant_id, r.cost, req.arrived_at)
        if decision.early is not None:
            st.stats.violation("sharepoint RU (Graph list route)", (req.token.client_id, req.tenant.tenant_id),
                               *decision.early)
        if not decision.allowed:
            st.stats.throttled += 1
            resp = throttled(decision.retry_after, req, "ResourceUnitLimitExceeded")
        else:
            resp = await r.handler(req, m)
        resp.headers.update(decision.headers)
        return resp


def throttled(retry_after: float, req: GraphRequest,
              information: str = "CommunicationsServiceLimitExceeded") -> GraphResponse:
    body = graph_error_body("TooManyRequests", "Please retry again later.")
    body["error"]["innerError"].update({"code": "429", "message": "Please retry after", "status": "429"})
    ra = f"{retry_after:.3f}".rstrip("0").rstrip(".")
    return GraphResponse(429, body, {
        "Retry-After": ra,
        "x-ms-throttle-scope": f"Tenant_Application/ReadWrite/{req.token.client_id}/{req.tenant.tenant_id}",
        "x-ms-throttle-information": information,
    })
