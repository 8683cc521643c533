"""Presence reads: ``POST /communications/getPresencesByUserId`` and the single-user GETs.

Undocumented cases, decided here (and settable where Graph's behaviour is unknown):
more than ``limits.presence_max_ids`` ids -> 400 BadRequest; an id that is not a GUID
-> 400 BadRequest; duplicate ids -> one object per distinct id (case-insensitive); a
GUID that is no user of the tenant -> a ``PresenceUnknown`` object
(``limits.unknown_presence_ids == "item"``, the default) or nothing (``"omit"``).
The bulk path is the benchmark's load, so per id it does one dict lookup and one model call.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from .common import Reject, add, context
from .router import GraphRequest, GraphResponse, GraphRouter

__all__ = ["register", "unknown_presence"]

PRESENCE_PERMS = ("Presence.Read.All", "Presence.ReadWrite.All")
ME_PRESENCE_PERMS = ("Presence.Read", *PRESENCE_PERMS)
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def register(router: GraphRouter) -> None:
    add(router, "POST", r"/communications/getPresencesByUserId", "graph.presence.bulk", presences_by_user_id,
        bucket="presence", permissions=PRESENCE_PERMS)
    add(router, "GET", r"/users/(?P<key>[^/]+)/presence", "graph.presence.user", user_presence,
        bucket="presence", permissions=PRESENCE_PERMS)
    add(router, "GET", r"/communications/presences/(?P<key>[^/]+)", "graph.presence.user",
        communications_presence, bucket="presence", permissions=PRESENCE_PERMS)
    add(router, "GET", r"/me/presence", "graph.presence.me", me_presence, bucket="presence",
        permissions=ME_PRESENCE_PERMS)


def unknown_presence(user_id: str) -> dict[str, Any]:
    """What Graph returns for someone it has no presence for (no Teams licence, unknown id)."""
    return {
        "id": user_id,
        "availability": "PresenceUnknown",
        "activity": "PresenceUnknown",
        "statusMessage": None,
        "outOfOfficeSettings": {"isOutOfOffice": False, "message": None},
        "sequenceNumber": "C000000000000000",  # the presence model's stamp for "never changed"
    }


def _bad(message: str) -> Reject:
    return Reject(400, "BadRequest", message)


async def presences_by_user_id(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    body = req.body
    ids = body.get("ids") if isinstance(body, dict) else None
    if not isinstance(ids, list):
        raise _bad("The request body must be a JSON object with the parameter 'ids' (a list of user object ids).")
    state = req.state
    stats = state.stats
    stats.presence_ids_total += len(ids)
    if len(ids) > stats.max_presence_ids:
        stats.max_presence_ids = len(ids)
    limit = state.limits.presence_max_ids
    if len(ids) > limit:
        raise _bad(f"The number of ids in the request ({len(ids)}) exceeds the maximum of {limit}.")
    users = req.tenant.users
    model = state.presence.presence
    tenant = req.tenant
    now = state.clock.now()
    keep_unknown = state.limits.unknown_presence_ids != "omit"
    value: list[dict[str, Any]] = []
    answered: list[str] = []
    seen: set[str] = set()
    for raw in ids:
        if not isinstance(raw, str):
            raise _bad("The parameter 'ids' must be a list of strings.")
        uid = raw.lower()
        if uid in seen:
            continue
        seen.add(uid)
        user = users.get(uid)
        if user is not None:
            value.append(model(tenant, user, now))
            answered.append(uid)
        elif _GUID.fullmatch(uid) is None:
            raise _bad(f"Invalid user id: '{raw}'. User ids must be object id GUIDs.")
        elif keep_unknown:
            value.append(unknown_presence(uid))
            answered.append(uid)
    state.presence_reads.record(tenant.tenant_id, answered, at=req.arrived_at, caller=_caller(req))
    return GraphResponse(200, {"@odata.context": context(req, "Collection(microsoft.graph.presence)"),
                               "value": value})


def _caller(req: GraphRequest) -> str:
    """Which access token made the call (a short hash: the read log never holds a token)."""
    return hashlib.sha256(req.token.token.encode("utf-8")).hexdigest()[:12]


def _one(req: GraphRequest, key: str, ctx: str) -> GraphResponse:
    user = req.tenant.users.get(key.lower())
    if user is None:
        if _GUID.fullmatch(key) is None:
            raise _bad(f"Invalid user id: '{key}'. User ids must be object id GUIDs.")
        raise Reject(404, "NotFound", f"Presence for user '{key}' was not found.")
    item = req.state.presence.presence(req.tenant, user, req.state.clock.now())
    req.state.presence_reads.record(req.tenant.tenant_id, (user.id,), at=req.arrived_at, caller=_caller(req))
    return GraphResponse(200, {"@odata.context": context(req, ctx), **item})


async def user_presence(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    key = m.group("key")
    return _one(req, key, f"users('{key}')/presence/$entity")


async def communications_presence(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    return _one(req, m.group("key"), "communications/presences/$entity")


async def me_presence(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    if req.token.user_upn is None:
        raise _bad("/me request is only valid with delegated authentication flow.")
    user = req.tenant.user_by_upn(req.token.user_upn)
    if user is None:
        raise Reject(404, "NotFound", f"Presence for user '{req.token.user_upn}' was not found.")
    return _one(req, user.id, "users('me')/presence/$entity")
