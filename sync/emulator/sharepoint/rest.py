"""SharePoint REST (``/sites/{site}/_api/...``): bearer checks, throttling, formats, ``$batch``.

What a request goes through, in order: the site must exist (404); the bearer token must be
valid, of the site's tenant and for SharePoint's audience (401 with ``WWW-Authenticate``);
app-only tokens minted from a client secret are refused (401 "Unsupported app only token.",
as SharePoint Online does: such apps must use Graph's list route); the (app, tenant) budget of
resource units (quota.py: 429 with ``Retry-After``; a client that keeps coming back
before its ``Retry-After`` has elapsed gets 503 "Server Too Busy"); the permission (403 "Access
denied."). A ``$batch`` envelope costs nothing; each of its parts is charged on its own.
Resources live in api.py, the multipart batch in batch.py.
"""

from __future__ import annotations

import json
import re
from urllib.parse import parse_qsl, unquote, urlsplit

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..identity.tokens import AuthFailure, TokenInfo
from ..model.tenant import Tenant
from ..state import EmulatorState
from . import entities as sj
from .api import classify, cost, dispatch
from .batch import SubRequest, parse_batch, render_batch
from .call import SpCall, SpResult, sp_error_result
from .quota import format_retry_after

__all__ = ["READ_PERMISSIONS", "WRITE_PERMISSIONS", "SharePointService", "routes"]

READ_PERMISSIONS = frozenset({"Sites.Read.All", "Sites.ReadWrite.All", "Sites.Manage.All",
                              "Sites.FullControl.All", "Sites.Selected"})
WRITE_PERMISSIONS = READ_PERMISSIONS - {"Sites.Read.All"}
SHAREPOINT_APP_ID = "00000003-0000-0ff1-ce00-000000000000"
ACCESS_DENIED = "-2147024891, System.UnauthorizedAccessException"
_SPO_AUDIENCE = re.compile(r"https://[a-z0-9-]+\.sharepoint\.com", re.IGNORECASE)
_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE", "MERGE", "HEAD"]


class SharePointService:
    """One emulator's SharePoint REST front door; remembers each client's run of early retries."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state
        self._early_retries: dict[tuple[str, str], int] = {}

    async def endpoint(self, request: Request) -> Response:
        response = await self._handle(request)
        self.state.stats.status[response.status_code] += 1
        return response

    async def _handle(self, request: Request) -> Response:
        body = await request.body()
        headers = {k.lower(): v for k, v in request.headers.items()}
        fmt = sj.negotiate(headers.get("accept"))
        rest = request.path_params.get("rest", "")
        method = _effective_method(request.method, headers)
        endpoint_name, _ = classify(rest, method)
        self.state.stats.count(endpoint_name)
        found = self.state.world.site_by_path("/sites/" + request.path_params["site"])
        if found is None:
            return _render(sp_error_result(fmt, 404, "-2147024894, System.IO.FileNotFoundException",
                                           "File Not Found."))
        tenant, site = found
        origin = f"{request.url.scheme}://{request.url.netloc}"
        token = self.authenticate(headers.get("authorization"), tenant, origin, fmt)
        if isinstance(token, SpResult):
            return _render(token)
        call = SpCall(method, rest, dict(request.query_params), headers, body, origin, tenant, site, token, fmt,
                      request.scope.get("arrived_at"), tuple(getattr(self.state.faults, "refuse", ())))
        if endpoint_name == "sharepoint.batch":
            if "batch" in getattr(self.state.faults, "refuse", ()):  # a site that does not take $batch
                self.state.stats.faults_injected["refuse_batch"] += 1
                return _render(sp_error_result(fmt, 400, "-1, Microsoft.SharePoint.Client.InvalidClientQueryException",
                                               "The $batch request is not supported on this site."))
            return await self.batch(call, headers.get("content-type", ""))
        refused, quota_headers = self.admit(token, tenant, fmt, cost(rest, method), call.arrived_at)
        if refused:
            return _render(refused)
        result = await self.run(call)
        result.headers.update(quota_headers)
        return _render(result)

    def authenticate(self, authorization: str | None, tenant: Tenant, origin: str,
                     fmt: str) -> TokenInfo | SpResult:
        """The caller's token, or the 401 SharePoint Online sends."""
        try:
            token = self.state.tokens.validate(authorization)
        except AuthFailure as exc:
            return _unauthorized(tenant, origin, exc.message, 3000006)
        if token.tenant_id != tenant.tenant_id:
            return _unauthorized(tenant, origin, "Invalid issuer or signature.", 3000006)
        aud = token.audience.rstrip("/")
        if aud != origin.lower() and aud != SHAREPOINT_APP_ID and not _SPO_AUDIENCE.fullmatch(aud):
            return _unauthorized(tenant, origin, f"Invalid audience Uri '{token.audience}'.", 3000003)
        if token.is_app_only and token.via_secret:
            return _unauthorized(tenant, origin, "Unsupported app only token.", 3000003)
        return token

    def admit(self, token: TokenInfo, tenant: Tenant, fmt: str, units: int,
              arrived: float | None) -> tuple[SpResult | None, dict[str, str]]:
        """Charge ``units`` RUs to the (app, tenant) minute for a request that came in at ``arrived``: (refusal or
        None, RateLimit-* headers to send)."""
        st = self.state
        key = (token.client_id, tenant.tenant_id)
        decision = st.sp_quota.charge(*key, units, arrived)
        if decision.early is not None:
            st.stats.violation("sharepoint RU (REST)", key, *decision.early)
            self._early_retries[key] = self._early_retries.get(key, 0) + 1
        elif decision.allowed:
            self._early_retries.pop(key, None)
        if decision.allowed:
            return None, decision.headers
        st.stats.throttled += 1
        headers = {"Retry-After": format_retry_after(decision.retry_after), **decision.headers}
        busy_after = st.limits.sharepoint_busy_after_violations
        if busy_after and self._early_retries.get(key, 0) >= busy_after:
            return sp_error_result(fmt, 503, "-2146232832, Microsoft.SharePoint.SPServerTooBusyException",
                                   "Server Too Busy", headers), {}
        return sp_error_result(fmt, 429, "-2147024860, Microsoft.SharePoint.SPRequestThrottledException",
                               "The request has been throttled. Retry after the number of seconds in the "
                               "Retry-After header.", headers), {}

    async def run(self, call: SpCall) -> SpResult:
        """Permission check, then the resource handler (shared by direct requests and ``$batch`` parts)."""
        _, writes = classify(call.path, call.method)
        needed = WRITE_PERMISSIONS if writes else READ_PERMISSIONS
        if call.token is not None and not (call.token.permissions & needed):
            return sp_error_result(call.fmt, 403, ACCESS_DENIED,
                                   "Access denied. You do not have permission to perform this action or "
                                   "access this resource.")
        return await dispatch(call)

    async def batch(self, call: SpCall, content_type: str) -> Response:
        try:
            parts = parse_batch(content_type, call.body)
        except ValueError as exc:
            return _render(sp_error_result(call.fmt, 400, "-1, Microsoft.Data.OData.ODataException", str(exc)))
        results = [await self._sub(call, part) for part in parts]
        data, ctype = render_batch(results)
        last = next((r.headers for r in reversed(results) if "RateLimit-Limit" in r.headers), {})
        envelope = {k: v for k, v in last.items() if k.startswith("RateLimit-")}
        return Response(data, 200, headers=envelope, media_type=ctype)

    async def _sub(self, outer: SpCall, part: SubRequest) -> SpResult:
        """One part of a batch, run as if sent alone with the batch's token."""
        headers = part.headers
        fmt = sj.negotiate(headers.get("accept"))
        u = urlsplit(part.url)
        path = unquote(u.path)
        prefix = outer.site.path.lower() + "/_api/"
        if path.lower().startswith(prefix):
            path = path[len(prefix):]
        elif u.scheme or path.startswith("/"):
            return sp_error_result(fmt, 400, "-1, Microsoft.SharePoint.Client.InvalidClientRequestException",
                                   "Requests in a batch must address the batch's own site.")
        method = _effective_method(part.method, headers)
        name, _ = classify(path, method)
        self.state.stats.count(name)
        assert outer.token is not None
        refused, quota_headers = self.admit(outer.token, outer.tenant, fmt, max(1, cost(path, method)),
                                           outer.arrived_at)
        if refused:
            return refused
        call = SpCall(method, path, dict(parse_qsl(u.query, keep_blank_values=True)), headers, part.body,
                      outer.origin, outer.tenant, outer.site, outer.token, fmt, refuse=outer.refuse)
        result = await self.run(call)
        result.headers.update(quota_headers)
        return result


def _effective_method(method: str, headers: dict[str, str]) -> str:
    override = headers.get("x-http-method")
    m = (override or method).upper()
    return "MERGE" if m in ("PATCH", "PUT") else m


def _unauthorized(tenant: Tenant, origin: str, reason: str, code: int) -> SpResult:
    """SharePoint Online's 401: a bare ``error_description`` body plus the bearer challenge."""
    return SpResult(401, {"error_description": reason}, {
        "WWW-Authenticate": (f'Bearer realm="{tenant.tenant_id}",client_id="{SHAREPOINT_APP_ID}",'
                             f'authorization_uri="{origin}/common/oauth2/authorize"'),
        "x-ms-diagnostics": f'{code};reason="{reason}";category="invalid_client"',
    }, "application/json;charset=utf-8")


def _render(result: SpResult) -> Response:
    if isinstance(result.body, bytes):  # a file's content
        data = result.body
    else:
        data = b"" if result.body is None else json.dumps(result.body, separators=(",", ":")).encode()
    headers = dict(result.headers)
    if result.body is not None and result.content_type:
        headers["Content-Type"] = result.content_type
    return Response(data, result.status, headers=headers)


def routes(state: EmulatorState) -> list[BaseRoute]:
    svc = SharePointService(state)
    return [
        Route("/sites/{site}/_api/{rest:path}", svc.endpoint, methods=_METHODS),
        Route("/sites/{site}/_api", svc.endpoint, methods=_METHODS),
    ]

