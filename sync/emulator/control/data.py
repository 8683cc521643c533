"""Control paths that touch the tenant's data: device codes, presence ground truth, directory, lists."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.requests import Request

from ..identity import devicecode
from ..identity.devicecode import DeviceFlow
from ..model.fixtures import user_from_json
from ..model.tenant import Tenant, User
from ..state import EmulatorState
from .common import BadRequest, Handler, find_tenant, parse_time

__all__ = ["clear_writes", "table"]

MAX_LOG_WINDOW = timedelta(days=7)


# --- device codes --------------------------------------------------------------------------------------


def _flow(state: EmulatorState, body: Any) -> DeviceFlow:
    if not isinstance(body, dict):
        raise BadRequest('expected {"user_code": ...}')
    if body.get("device_code"):
        flow = state.device_codes.get(str(body["device_code"]))
    elif body.get("user_code"):
        flow = devicecode.find_by_user_code(state, str(body["user_code"]))
    else:
        raise BadRequest("user_code is required")
    if flow is None:
        raise BadRequest("no such device code", 404)
    return flow


def _default_upn(state: EmulatorState, flow: DeviceFlow) -> str:
    """The first service account of the tenant that registers the app: handy for scripts."""
    tenants = [state.world.tenants[flow.tenant_id]] if flow.tenant_id else list(state.world.tenants.values())
    for t in tenants:
        if t.app(flow.client_id) is not None and t.service_accounts:
            return t.service_accounts[0].upn
    raise BadRequest("upn is required (the app's tenant has no service account)")


async def codes(state: EmulatorState, request: Request, body: Any) -> Any:
    pending = [f for f in state.device_codes.values() if f.status == "pending" and not f.expired()]
    return {"value": [f.to_json() for f in pending]}


async def approve(state: EmulatorState, request: Request, body: Any) -> Any:
    flow = _flow(state, body)
    upn = str(body.get("upn") or _default_upn(state, flow))
    try:
        devicecode.approve(state, flow, upn)
    except ValueError as exc:
        raise BadRequest(str(exc), 409) from None
    return flow.to_json()


async def decline(state: EmulatorState, request: Request, body: Any) -> Any:
    flow = _flow(state, body)
    try:
        devicecode.decline(flow)
    except ValueError as exc:
        raise BadRequest(str(exc), 409) from None
    return flow.to_json()


async def expire(state: EmulatorState, request: Request, body: Any) -> Any:
    flow = _flow(state, body)
    devicecode.expire(flow)
    return flow.to_json()


async def slow_down(state: EmulatorState, request: Request, body: Any) -> Any:
    flow = _flow(state, body)
    flow.slow_down = True
    return flow.to_json()


# --- presence ground truth -----------------------------------------------------------------------------


def _users(tenant: Tenant, ids: str | None) -> list[User]:
    if not ids:
        return list(tenant.users.values())
    found = [tenant.find_user(i.strip()) for i in ids.split(",") if i.strip()]
    return [u for u in found if u is not None]


async def presence_log(state: EmulatorState, request: Request, body: Any) -> Any:
    """Every presence transition in [since, until) on the presence clock (default: the last hour)."""
    q = request.query_params
    tenant = find_tenant(state, q.get("tenant"))
    until = parse_time(q["until"]) if q.get("until") else state.clock.now()
    since = parse_time(q["since"]) if q.get("since") else until - timedelta(hours=1)
    if since > until:
        raise BadRequest("since must not be after until")
    if until - since > MAX_LOG_WINDOW:
        raise BadRequest("the window is limited to 7 days")
    users = _users(tenant, q.get("ids"))
    return {"tenant_id": tenant.tenant_id, "since": since.isoformat().replace("+00:00", "Z"),
            "until": until.isoformat().replace("+00:00", "Z"),
            "value": state.presence.transitions(tenant, users, since, until)}


async def presence_at(state: EmulatorState, request: Request, body: Any) -> Any:
    q = request.query_params
    tenant = find_tenant(state, q.get("tenant"))
    at = parse_time(q["at"]) if q.get("at") else state.clock.now()
    return {"at": at.isoformat().replace("+00:00", "Z"),
            "value": [state.presence.presence(tenant, u, at) for u in _users(tenant, q.get("ids"))]}


# --- directory and list data ---------------------------------------------------------------------------


def _fixture_json(user: User) -> dict[str, Any]:
    d = user.graph_properties()
    d["teamsLicensed"] = user.teams_licensed
    d["utcOffsetMinutes"] = user.utc_offset_minutes
    return d


async def directory(state: EmulatorState, request: Request, body: Any) -> Any:
    """Upsert users (fixture JSON; existing users are merged) and delete ids; /users/delta sees both."""
    tenant = find_tenant(state, body.get("tenant"))
    reason = body.get("reason", "deleted")
    if reason not in ("deleted", "changed"):
        raise BadRequest("reason must be 'deleted' or 'changed'")
    upserted, deleted = [], []
    for doc in body.get("upsert", []):
        if not isinstance(doc, dict) or not doc.get("id"):
            raise BadRequest("each upserted user needs an id")
        existing = tenant.users.get(str(doc["id"]).lower())
        merged = {**_fixture_json(existing), **doc} if existing else dict(doc)
        if not merged.get("userPrincipalName"):
            raise BadRequest(f"user {doc['id']} needs a userPrincipalName")
        upserted.append(tenant.upsert_user(user_from_json(merged)).id)
    for uid in body.get("delete", []):
        if tenant.delete_user(str(uid).lower(), reason):
            deleted.append(str(uid).lower())
    return {"upserted": upserted, "deleted": deleted, "directory_version": tenant.directory_version}


async def list_items(state: EmulatorState, request: Request, body: Any) -> Any:
    tenant = find_tenant(state, body.get("tenant"))
    lst = tenant.site.list_by_id_or_title(str(body.get("list") or "Agents"))
    if lst is None:
        raise BadRequest(f"no list {body.get('list')!r} on {tenant.site.path}", 404)
    now = state.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    added, updated, deleted = [], [], []
    for fields in body.get("add", []):
        item = lst.add(dict(fields))
        item.created = item.modified = now
        added.append(item.id)
    for change in body.get("update", []):
        found = lst.items.get(int(change["id"]))
        if found is None:
            raise BadRequest(f"no item {change['id']} in {lst.title}", 404)
        found.fields.update(change.get("fields", {}))
        found.version += 1
        found.modified = now
        updated.append(found.id)
    for item_id in body.get("delete", []):
        if lst.items.pop(int(item_id), None) is not None:
            deleted.append(int(item_id))
    return {"added": added, "updated": updated, "deleted": deleted, "count": len(lst.items)}


async def list_writes(state: EmulatorState, request: Request, body: Any) -> Any:
    """How many times each item of a list (default: the Agent list, the site's first) was updated since reset, and
    how many of those updates changed nothing (``unchanged``: a value written again)."""
    q = request.query_params
    tenant = find_tenant(state, q.get("tenant"))
    key = q.get("list")
    lst = tenant.site.list_by_id_or_title(key) if key else next(iter(tenant.site.lists.values()), None)
    if lst is None:
        raise BadRequest(f"no list {key!r} on {tenant.site.path}", 404)
    writes = {str(item_id): n for item_id, n in sorted(lst.writes.items())}
    unchanged = {str(item_id): n for item_id, n in sorted(lst.unchanged.items())}
    return {"tenant": tenant.name, "list": lst.title, "writes": writes, "total": sum(writes.values()),
            "unchanged": unchanged, "unchanged_total": sum(unchanged.values())}


def clear_writes(state: EmulatorState) -> None:
    for tenant in state.world.tenants.values():
        for lst in tenant.site.lists.values():
            lst.writes.clear()
            lst.unchanged.clear()


async def list_writes_reset(state: EmulatorState, request: Request, body: Any) -> Any:
    clear_writes(state)
    return {"reset": True}


async def presence_reads(state: EmulatorState, request: Request, body: Any) -> Any:
    """Successful presence reads since reset: per id last read and gaps between reads (all tenants merged
    when no tenant is named); ``within`` (seconds, default 2) for the calls of one token between two of another."""
    key = request.query_params.get("tenant")
    tenant_id = find_tenant(state, key).tenant_id if key else None
    try:
        within = float(request.query_params.get("within", "2"))
    except ValueError:
        raise BadRequest("within must be a number of seconds", 400) from None
    return state.presence_reads.summary(tenant_id, within)


async def presence_reads_reset(state: EmulatorState, request: Request, body: Any) -> Any:
    state.presence_reads.reset()
    return {"reset": True}


def table() -> list[tuple[str, Handler, list[str]]]:
    get, post = ["GET"], ["POST"]
    return [
        ("/_emulator/devicecode", codes, get),
        ("/_emulator/devicecode/approve", approve, post),
        ("/_emulator/devicecode/decline", decline, post),
        ("/_emulator/devicecode/expire", expire, post),
        ("/_emulator/devicecode/slow_down", slow_down, post),
        ("/_emulator/presence-log", presence_log, get),
        ("/_emulator/presence", presence_at, get),
        ("/_emulator/directory", directory, post),
        ("/_emulator/lists/items", list_items, post),
        ("/_emulator/lists/writes", list_writes, get),
        ("/_emulator/lists/writes/reset", list_writes_reset, post),
        ("/_emulator/presence-reads", presence_reads, get),
        ("/_emulator/presence-reads/reset", presence_reads_reset, post),
    ]
