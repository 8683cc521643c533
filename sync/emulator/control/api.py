"""The control API under ``/_emulator/``: what tests, the demo and any script use to drive the tenant.

No token is needed, but only loopback clients are served (403 otherwise). Every body and reply
is JSON. Info, stats, reset, faults, clock, limits and tokens are here; device codes, presence
ground truth and test-data paths live in ``data``; the shared plumbing in ``common``.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any

from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from ..faults.layer import FaultConfig, revoke
from ..model.clock import Clock
from ..model.tenant import Tenant
from ..state import EmulatorState
from . import changes, data
from .common import BadRequest, Handler, base_url, endpoint, find_tenant, parse_time

__all__ = ["routes"]


# --- info, stats, reset --------------------------------------------------------------------------------


def tenant_info(t: Tenant, base: str) -> dict[str, Any]:
    return {
        "tenant_id": t.tenant_id,
        "name": t.name,
        "display_name": t.display_name,
        "domains": [{"id": d.id, "isVerified": d.is_verified, "isDefault": d.is_default,
                     "isInitial": d.is_initial} for d in t.domains],
        "apps": [{
            "client_id": a.client_id, "client_secret": a.client_secret, "kind": a.kind,
            "permissions": list(a.application_permissions if a.kind == "confidential"
                                else a.delegated_permissions),
            "display_name": a.display_name, "secret_expired": a.secret_expired,
            "admin_consented": a.admin_consented,
        } for a in t.apps],
        "service_accounts": [{"upn": s.upn, "password": s.password, "mfa_required": s.mfa_required}
                             for s in t.service_accounts],
        "site_url": f"{base}{t.site.path}",
        "site_hostname": t.site.hostname,
        "list_title": next(iter(t.site.lists.values())).title if t.site.lists else "Agents",
        "upn_column": t.upn_column,
    }


async def info(state: EmulatorState, request: Request, body: Any) -> Any:
    base = base_url(request)
    return {
        "tenants": [tenant_info(t, base) for t in state.world.tenants.values()],
        "base_url": base,
        "authority_host": base,
        "graph_url": base,
        "ca_file": state.ca_file,
    }


async def stats(state: EmulatorState, request: Request, body: Any) -> Any:
    out = state.stats.to_json()
    out["presence_window_peak"] = max(state.stats.presence_window_peak, state.throttle.peak("presence"))
    names = {t.tenant_id: t.name for t in state.world.tenants.values()}
    out["sharepoint_ru_used"] = {names.get(k, k): v for k, v in state.sp_quota.used.items()}
    out["sharepoint_ru_peak_minute"] = {names.get(k, k): v for k, v in state.sp_quota.peak.items()}
    return out


async def stats_reset(state: EmulatorState, request: Request, body: Any) -> Any:
    state.stats.reset()
    state.sp_quota.reset_figures()
    return state.stats.to_json()


async def reset(state: EmulatorState, request: Request, body: Any) -> Any:
    """Counters, budgets, faults, clock, write and presence-read logs back to defaults; tokens and data stay."""
    state.stats.reset()
    state.throttle.reset()
    state.sp_quota.reset()
    state.faults = FaultConfig()
    state.clock = Clock()
    data.clear_writes(state)
    state.presence_reads.reset()
    return {"reset": True}


# --- faults, clock, limits -----------------------------------------------------------------------------


async def faults(state: EmulatorState, request: Request, body: Any) -> Any:
    """GET reads; POST merges the given switches (``"replace": true`` starts from defaults,
    ``"reset": true`` clears everything)."""
    current = state.faults if isinstance(state.faults, FaultConfig) else FaultConfig()
    if request.method == "POST":
        if not isinstance(body, dict):
            raise BadRequest("expected a JSON object of fault switches")
        changes = dict(body)
        if changes.pop("reset", False):
            current = FaultConfig()
        if changes.pop("replace", False):
            current = FaultConfig()
        state.faults = current.merged(changes)
        if state.faults.revoke_tokens:  # "revoke now", not on the next request
            state.faults.revoke_tokens = False
            revoke(state, state.faults)
    return state.faults.to_json()


async def clock(state: EmulatorState, request: Request, body: Any) -> Any:
    if request.method == "POST":
        if not isinstance(body, dict):
            raise BadRequest("expected a JSON object")
        unknown = set(body) - {"set", "advance", "freeze", "speed"}
        if unknown:
            raise BadRequest(f"unknown clock field(s): {', '.join(sorted(unknown))}")
        c = state.clock
        if body.get("set") is not None:
            c.set(parse_time(str(body["set"])))
        if body.get("freeze") is True:
            c.freeze()
        elif body.get("freeze") is False:
            c.run()
        if body.get("speed") is not None:
            speed = float(body["speed"])
            if speed < 0:
                raise BadRequest("speed must not be negative")
            if c.frozen:
                c.speed = speed
            else:
                c.run(speed)
        if body.get("advance") is not None:
            c.advance(float(body["advance"]))
    return state.clock.to_json()


async def limits(state: EmulatorState, request: Request, body: Any) -> Any:
    if request.method == "POST":
        if not isinstance(body, dict):
            raise BadRequest("expected a JSON object of limit fields")
        types = {f.name: type(getattr(state.limits, f.name)) for f in fields(state.limits)}
        unknown = set(body) - set(types)
        if unknown:
            raise BadRequest(f"unknown limit(s): {', '.join(sorted(unknown))}")
        for name, value in body.items():
            kind = types[name]
            if kind is str:
                if name == "unknown_presence_ids" and value not in ("item", "omit"):
                    raise BadRequest("unknown_presence_ids must be 'item' or 'omit'")
                setattr(state.limits, name, str(value))
            else:
                number = kind(value)
                if number < 0:
                    raise BadRequest(f"{name} must not be negative")
                setattr(state.limits, name, number)
        state.apply_limits()
    return asdict(state.limits)


# --- tokens --------------------------------------------------------------------------------------------


async def tokens_revoke(state: EmulatorState, request: Request, body: Any) -> Any:
    tenant_id = find_tenant(state, body["tenant"]).tenant_id if body.get("tenant") else None
    client_id = str(body["client_id"]).lower() if body.get("client_id") else None
    return {"revoked": state.tokens.revoke(tenant_id, client_id)}


async def tokens_expire(state: EmulatorState, request: Request, body: Any) -> Any:
    tenant_id = find_tenant(state, body["tenant"]).tenant_id if body.get("tenant") else None
    client_id = str(body["client_id"]).lower() if body.get("client_id") else None
    return {"expired": state.tokens.expire_all(tenant_id, client_id)}


def routes(state: EmulatorState) -> list[BaseRoute]:
    get, post, both = ["GET"], ["POST"], ["GET", "POST"]
    table: list[tuple[str, Handler, list[str]]] = [
        ("/_emulator/info", info, get),
        ("/_emulator/stats", stats, get),
        ("/_emulator/stats/reset", stats_reset, post),
        ("/_emulator/reset", reset, post),
        ("/_emulator/faults", faults, both),
        ("/_emulator/clock", clock, both),
        ("/_emulator/limits", limits, both),
        ("/_emulator/tokens/revoke", tokens_revoke, post),
        ("/_emulator/tokens/expire", tokens_expire, post),
    ]
    table += data.table() + changes.table()
    return [Route(path, endpoint(handler), methods=methods) for path, handler, methods in table]
