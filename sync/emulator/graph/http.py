"""Graph v1.0 over HTTP: bearer check, request parsing, dispatch through the shared router.

The handlers live by concept in ``users`` (users, me, delta, domains), ``presence``
(presence reads), ``batch`` (JSON batching) and ``lists`` (sites and lists); ``register``
puts them all in the router's table. This module turns Starlette requests into
``GraphRequest`` objects and ``GraphResponse`` objects back into HTTP with Graph's headers
(``request-id``, ``client-request-id``, OData content type). The helpers the handlers
share live in ``common``, so no handler imports this module.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..identity.tokens import GRAPH_AUDIENCES, AuthFailure
from ..state import EmulatorState
from . import batch, columns, drives, lists, presence, users
from .common import CONTENT_TYPE
from .router import GraphRequest, GraphResponse, GraphRouter, error

__all__ = ["register", "routes", "to_http"]

_WWW_AUTH = ('Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", '
             'client_id="00000003-0000-0000-c000-000000000000"')
_BAD_JSON = ("Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of "
             "valid JSON format.")


def register(router: GraphRouter) -> None:
    """Add every Graph v1.0 handler to the shared router's table."""
    users.register(router)
    presence.register(router)
    batch.register(router)
    drives.register(router)
    columns.register(router)
    lists.register(router)


def routes(state: EmulatorState, router: GraphRouter) -> list[BaseRoute]:
    async def endpoint(request: Request) -> Response:
        return await handle(request, state, router)

    return [Route("/v1.0/{path:path}", endpoint, methods=["GET", "POST", "PATCH", "PUT", "DELETE"])]


# --- HTTP ------------------------------------------------------------------------------------------

async def handle(request: Request, state: EmulatorState, router: GraphRouter) -> Response:
    raw = await request.body()
    crid = request.headers.get("client-request-id") or str(uuid.uuid4())
    rid = str(uuid.uuid4())
    base_url = str(request.base_url).rstrip("/")
    try:
        token = state.tokens.validate(request.headers.get("authorization"))
    except AuthFailure as exc:
        return _unauthorized(state, exc.message, rid, crid)
    if token.audience not in GRAPH_AUDIENCES and token.audience != base_url.lower():
        return _unauthorized(state, "Access token validation failure. Invalid audience.", rid, crid)
    tenant = state.world.tenants.get(token.tenant_id)
    if tenant is None:
        return _unauthorized(state, "Access token validation failure. Invalid issuer.", rid, crid)
    body: Any = None
    path = "/" + request.path_params["path"]
    if raw.strip() and not (request.method == "PUT" and path.lower().endswith(":/content")):
        try:
            body = json.loads(raw)
        except ValueError:
            return to_http(state, error(400, "BadRequest", _BAD_JSON), rid, crid)
    query: dict[str, str] = {}
    for k, v in request.query_params.multi_items():
        query.setdefault(k, v)
    req = GraphRequest(
        method=request.method, path=path, query=query, raw=raw,
        headers={k.lower(): v for k, v in request.headers.items()}, body=body, base_url=base_url,
        token=token, tenant=tenant, state=state, arrived_at=request.scope.get("arrived_at"),
    )
    return to_http(state, await router.dispatch(req), rid, crid)


def _unauthorized(state: EmulatorState, message: str, rid: str, crid: str) -> Response:
    resp = error(401, "InvalidAuthenticationToken", message, {"WWW-Authenticate": _WWW_AUTH})
    return to_http(state, resp, rid, crid)


def stamp_error(body: Any, rid: str, crid: str) -> None:
    """Make an error body's innerError carry the same ids as the response headers."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        inner = body["error"].get("innerError")
        if isinstance(inner, dict):
            inner["request-id"] = rid
            inner["client-request-id"] = crid


def to_http(state: EmulatorState, resp: GraphResponse, rid: str, crid: str) -> Response:
    state.stats.status[resp.status] += 1
    headers = {"request-id": rid, "client-request-id": crid, "Cache-Control": "no-cache",
               "OData-Version": "4.0", "Strict-Transport-Security": "max-age=31536000",
               "x-ms-ags-diagnostic": '{"ServerInfo":{"DataCenter":"Local","Slice":"E","Ring":"5"}}'}
    headers.update(resp.headers)
    if resp.body is None:
        return Response(b"", status_code=resp.status, headers=headers)
    if isinstance(resp.body, bytes):
        return Response(resp.body, status_code=resp.status, headers=headers)
    stamp_error(resp.body, rid, crid)
    ctype = "application/json" if resp.status >= 400 else CONTENT_TYPE
    data = json.dumps(resp.body, separators=(",", ":"), ensure_ascii=False).encode()
    return Response(data, status_code=resp.status, headers=headers, media_type=ctype)


