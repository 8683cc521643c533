"""What every control handler shares: the loopback check, JSON in and out, errors, tenant lookup."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..model.tenant import Tenant
from ..responses import json_response
from ..state import EmulatorState

__all__ = ["BadRequest", "Handler", "base_url", "endpoint", "find_tenant", "is_loopback", "parse_time"]


class BadRequest(Exception):
    """A control call that cannot be done; becomes a 400 (or ``status``) with ``{"error": message}``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


Handler = Callable[[EmulatorState, Request, Any], Awaitable[Any]]


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def endpoint(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Loopback check, JSON body parsing and error mapping around a control handler."""
    async def run(request: Request) -> Response:
        raw = await request.body()
        if not is_loopback(request.client.host if request.client else None):
            return json_response({"error": "the control API answers loopback clients only"}, 403)
        state: EmulatorState = request.app.state.emulator
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return json_response({"error": "the body is not JSON"}, 400)
        try:
            result = await handler(state, request, body)
        except BadRequest as exc:
            return json_response({"error": str(exc)}, exc.status)
        except (ValueError, TypeError, KeyError) as exc:
            return json_response({"error": f"{type(exc).__name__}: {exc}"}, 400)
        return result if isinstance(result, Response) else json_response(result)
    return run


def parse_time(value: str) -> datetime:
    """ISO 8601 (``Z`` allowed); naive times are UTC."""
    try:
        t = datetime.fromisoformat(value.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadRequest(f"not an ISO 8601 time: {value!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def find_tenant(state: EmulatorState, key: str | None) -> Tenant:
    if not key:
        if len(state.world.tenants) == 1:
            return next(iter(state.world.tenants.values()))
        raise BadRequest("say which tenant (id, name or domain)")
    tenant = state.world.resolve_tenant(str(key))
    if tenant is None:
        raise BadRequest(f"unknown tenant {key!r}", 404)
    return tenant


def base_url(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"
