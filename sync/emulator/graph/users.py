"""Directory reads: ``/users`` (paging, $select, $filter), ``/users/{key}``, ``/me``, ``/users/delta``, ``/domains``.

Users are served in object-id order; a page token remembers the last id returned, so
pages stay consistent while the directory changes. Delta tokens carry the tenant, a
fingerprint of the directory they were issued against, and its version at the start of
the round, so a later call returns exactly what changed (``version`` greater) plus
``@removed`` entries for deletions.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_left, bisect_right
from typing import Any

from ..model.tenant import DEFAULT_USER_PROPERTIES, Tenant, User
from .common import Reject, add, context, decode_token, encode_token, link
from .filter import FilterError, UpnRange, parse_filter, parse_upn_range
from .router import GraphRequest, GraphResponse, GraphRouter

__all__ = ["project", "register", "select_of"]

USER_PERMS = ("User.ReadBasic.All", "User.Read.All", "User.ReadWrite.All", "Directory.Read.All",
              "Directory.ReadWrite.All")
ME_PERMS = ("User.Read", "User.ReadWrite") + USER_PERMS
DOMAIN_PERMS = ("Domain.Read.All", "Domain.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All")

# Real user properties the model keeps no value for: $select accepts them and returns these defaults.
_EXTRA: dict[str, Any] = {
    "ageGroup": None, "city": None, "companyName": None, "country": None, "createdDateTime": None,
    "creationType": None, "deletedDateTime": None, "employeeId": None, "employeeType": None,
    "externalUserState": None, "faxNumber": None, "isResourceAccount": None, "otherMails": [],
    "onPremisesSyncEnabled": None, "onPremisesImmutableId": None, "onPremisesSamAccountName": None,
    "onPremisesUserPrincipalName": None, "passwordPolicies": None, "postalCode": None,
    "preferredDataLocation": None, "showInAddressList": None, "state": None, "streetAddress": None,
    "usageLocation": None, "assignedLicenses": [], "identities": [],
}
_KNOWN = {k.lower(): k for k in [*User("", "", "").graph_properties(), *_EXTRA]}
_NOT_FOUND = "Resource '{}' does not exist or one of its queried reference-property objects are not present."

_sorted_cache: dict[int, tuple[tuple[int, int], list[str]]] = {}
_mail_cache: dict[int, tuple[tuple[int, int], dict[str, list[str]]]] = {}
_upn_cache: dict[int, tuple[tuple[int, int], tuple[list[str], list[str]]]] = {}
_fingerprints: dict[int, str] = {}


def register(router: GraphRouter) -> None:
    add(router, "GET", r"/users", "graph.users", list_users, permissions=USER_PERMS)
    add(router, "GET", r"/users/delta(?:\(\))?", "graph.users.delta", users_delta, permissions=USER_PERMS)
    add(router, "GET", r"/users\('(?P<key>(?:[^']|'')+)'\)", "graph.user", get_user, permissions=USER_PERMS)
    add(router, "GET", r"/users/(?P<key>[^/]+)", "graph.user", get_user, permissions=USER_PERMS)
    add(router, "GET", r"/me", "graph.me", get_me, permissions=ME_PERMS)
    add(router, "GET", r"/domains", "graph.domains", list_domains, permissions=DOMAIN_PERMS)
    add(router, "GET", r"/domains/(?P<key>[^/]+)", "graph.domain", get_domain, permissions=DOMAIN_PERMS)


# --- projection and query options ---------------------------------------------------------------------

def select_of(req: GraphRequest) -> list[str] | None:
    """Canonical property names from ``$select``; 400 for a property users do not have."""
    raw = req.q("select")
    if raw is None or not raw.strip():
        return None
    names: list[str] = []
    for part in raw.split(","):
        name = part.strip()
        if not name:
            continue
        canon = _KNOWN.get(name.lower())
        if canon is None:
            raise Reject(400, "BadRequest", f"Could not find a property named '{name}' on type 'microsoft.graph.user'.")
        if canon not in names:
            names.append(canon)
    return names or None


def project(user: User, select: list[str] | None) -> dict[str, Any]:
    """The user as Graph returns it: default properties, or the selected ones plus ``id``."""
    props = user.graph_properties()
    if select is None:
        return {k: props[k] for k in DEFAULT_USER_PROPERTIES}
    out: dict[str, Any] = {}
    for name in select:
        out[name] = props[name] if name in props else _EXTRA[name]
    if "id" not in out:
        out["id"] = user.id
    return out


def page_size(req: GraphRequest) -> int:
    """The page's size: ``$top`` (1..page_max, else 400) or Prefer's maxpagesize, under ``users_page_cap``."""
    size = _asked_page_size(req)
    cap = req.state.limits.users_page_cap
    return min(size, cap) if cap > 0 else size


def _asked_page_size(req: GraphRequest) -> int:
    limits = req.state.limits
    raw = req.q("top")
    if raw is None:
        prefer = re.search(r"odata\.maxpagesize=(\d+)", req.headers.get("prefer", ""))
        return min(int(prefer.group(1)), limits.page_max) if prefer and int(prefer.group(1)) > 0 \
            else limits.page_default
    value = raw.strip()
    if not value.isdigit() or not 1 <= int(value) <= limits.page_max:
        raise Reject(400, "Request_BadRequest",
                     f"Invalid page size specified: '{raw}'. Must be between 1 and {limits.page_max} inclusive.")
    return int(value)


def _context(req: GraphRequest, entity: str, select: list[str] | None) -> str:
    return context(req, f"{entity}({','.join(select)})" if select else entity)


def sorted_ids(tenant: Tenant) -> list[str]:
    """Every user id in order, recomputed only when the directory changed."""
    key = (tenant.directory_version, len(tenant.users))
    hit = _sorted_cache.get(id(tenant))
    if hit is None or hit[0] != key:
        hit = (key, sorted(tenant.users))
        _sorted_cache[id(tenant)] = hit
    return hit[1]


def _by_mail(tenant: Tenant) -> dict[str, list[str]]:
    key = (tenant.directory_version, len(tenant.users))
    hit = _mail_cache.get(id(tenant))
    if hit is None or hit[0] != key:
        index: dict[str, list[str]] = {}
        for u in tenant.users.values():
            if u.mail:
                index.setdefault(u.mail.lower(), []).append(u.id)
        hit = (key, index)
        _mail_cache[id(tenant)] = hit
    return hit[1]


def filtered_ids(req: GraphRequest, text: str) -> list[str]:
    try:
        terms = parse_filter(text, req.state.limits.filter_max_values)
    except FilterError as exc:
        raise Reject(400, exc.code, exc.message) from None
    tenant = req.tenant
    found: set[str] = set()
    for prop, value in terms:
        if prop == "id":
            if value.lower() in tenant.users:
                found.add(value.lower())
        elif prop == "userPrincipalName":
            user = tenant.user_by_upn(value)
            if user is not None:
                found.add(user.id)
        else:
            found.update(_by_mail(tenant).get(value.lower(), ()))
    return sorted(found)


def _page_after(req: GraphRequest, kind: str) -> str | None:
    raw = req.q("skiptoken")
    if raw is None:
        return None
    tok = decode_token(raw)
    if not tok or tok.get("k") != kind or tok.get("t") != req.tenant.tenant_id or not isinstance(tok.get("a"), str):
        raise Reject(400, "Request_BadRequest", "The specified page token value is invalid.")
    return str(tok["a"])


# --- handlers ------------------------------------------------------------------------------------------

def upn_index(tenant: Tenant) -> tuple[list[str], list[str]]:
    """Lower-cased UPNs in order and the user ids in the same order, rebuilt only when the directory changed,
    so a ge/le/startswith page costs two bisections instead of a scan of the directory."""
    key = (tenant.directory_version, len(tenant.users))
    hit = _upn_cache.get(id(tenant))
    if hit is None or hit[0] != key:
        pairs = sorted((u.user_principal_name.lower(), u.id) for u in tenant.users.values())
        hit = (key, ([k for k, _ in pairs], [i for _, i in pairs]))
        _upn_cache[id(tenant)] = hit
    return hit[1]


def _range_bounds(keys: list[str], rng: UpnRange) -> tuple[int, int]:
    """[start, end) of the keys a UPN range keeps."""
    if rng.empty:
        return 0, 0
    start = bisect_left(keys, rng.lo) if rng.lo is not None else 0
    end = bisect_right(keys, rng.hi) if rng.hi is not None else len(keys)
    if rng.prefix:
        start = max(start, bisect_left(keys, rng.prefix))
        end = min(end, bisect_left(keys, rng.prefix + "\U0010ffff"))
    return start, max(start, end)


def _upn_range(req: GraphRequest, text: str) -> UpnRange | None:
    try:
        return parse_upn_range(text)
    except FilterError as exc:
        raise Reject(400, exc.code, exc.message) from None


def _select_page(req: GraphRequest, top: int) -> tuple[list[str], int, str | None, str]:
    """(ids of this page, how many match in all, page token position of the last one or None, token kind)."""
    flt = req.q("filter")
    rng = _upn_range(req, flt) if flt and flt.strip() else None
    if rng is not None:
        keys, order = upn_index(req.tenant)
        first, end = _range_bounds(keys, rng)
        after = _page_after(req, "users-upn")
        start = bisect_right(keys, after, first, end) if after is not None else first
        stop = min(start + top, end)
        return order[start:stop], end - first, keys[stop - 1] if stop < end else None, "users-upn"
    ids = filtered_ids(req, flt) if flt and flt.strip() else sorted_ids(req.tenant)
    after = _page_after(req, "users")
    start = bisect_right(ids, after) if after is not None else 0
    page = ids[start:start + top]
    return page, len(ids), page[-1] if start + top < len(ids) else None, "users"


async def list_users(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    select = select_of(req)
    top = page_size(req)
    page, total, last, kind = _select_page(req, top)
    users = req.tenant.users
    body: dict[str, Any] = {"@odata.context": _context(req, "users", select)}
    count = (req.q("count") or "").lower() == "true" and req.headers.get("consistencylevel", "").lower() == "eventual"
    if count and req.q("skiptoken") is None:
        body["@odata.count"] = total
    if last is not None:
        params = {k: v for k, v in req.query.items() if k.lstrip("$").lower() != "skiptoken"}
        params["$skiptoken"] = encode_token({"k": kind, "t": req.tenant.tenant_id, "a": last})
        body["@odata.nextLink"] = link(req, "/users", params)
    body["value"] = [project(users[i], select) for i in page if i in users]
    return GraphResponse(200, body)


async def get_user(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    key = m.group("key").replace("''", "'") if m.re.pattern.startswith(r"/users\(") else m.group("key")
    select = select_of(req)
    user = req.tenant.find_user(key)
    if user is None:
        raise Reject(404, "Request_ResourceNotFound", _NOT_FOUND.format(key))
    body = {"@odata.context": _context(req, "users", select) + "/$entity", **project(user, select)}
    return GraphResponse(200, body)


async def get_me(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    if req.token.user_upn is None:
        raise Reject(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
    select = select_of(req)
    user = req.tenant.user_by_upn(req.token.user_upn)
    if user is None:
        raise Reject(404, "Request_ResourceNotFound", _NOT_FOUND.format(req.token.user_upn))
    return GraphResponse(200, {"@odata.context": _context(req, "users", select) + "/$entity",
                               **project(user, select)})


async def list_domains(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    return GraphResponse(200, {"@odata.context": context(req, "domains"),
                               "value": [d.to_graph() for d in req.tenant.domains]})


async def get_domain(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    key = m.group("key")
    for d in req.tenant.domains:
        if d.id.lower() == key.lower():
            return GraphResponse(200, {"@odata.context": context(req, "domains/$entity"), **d.to_graph()})
    raise Reject(404, "Request_ResourceNotFound", _NOT_FOUND.format(key))


# --- delta ---------------------------------------------------------------------------------------------

def fingerprint(tenant: Tenant) -> str:
    """Identifies the directory a delta token belongs to; a restarted tenant with other data refuses old tokens."""
    fp = _fingerprints.get(id(tenant))
    if fp is None:
        h = hashlib.sha256(tenant.tenant_id.encode())
        for uid in sorted(tenant.users):
            u = tenant.users[uid]
            h.update(f"|{uid},{u.user_principal_name},{u.mail},{u.account_enabled},{u.version}".encode())
        fp = h.hexdigest()[:16]
        _fingerprints[id(tenant)] = fp
    return fp


def _sync_state_lost() -> Reject:
    return Reject(400, "syncStateNotFound",
                  "The sync state generation is not found. The delta token is expired and data must be "
                  "synchronized again.")


def delta_page_size(req: GraphRequest) -> int:
    """Objects per delta page: ``Prefer: odata.maxpagesize=N`` honoured up to 200, 200 by default (Graph's
    users/delta pages hold at most about 200 objects); ``$top`` is validated like on /users and capped too."""
    cap = req.state.limits.delta_page_max
    prefer = re.search(r"odata\.maxpagesize=(\d+)", req.headers.get("prefer", ""))
    if req.q("top") is not None:
        return min(page_size(req), cap)
    if prefer and int(prefer.group(1)) > 0:
        return min(int(prefer.group(1)), cap)
    return cap


def _delta_state(req: GraphRequest) -> dict[str, Any]:
    """Where this delta call stands: ``since`` (None on the initial round), ``upto``, ``after``, ``s``, ``n``."""
    tenant = req.tenant
    dtok, stok = req.q("deltatoken"), req.q("skiptoken")
    if dtok is None and stok is None:
        return {"since": None, "upto": tenant.directory_version, "after": None, "s": select_of(req),
                "n": delta_page_size(req)}
    if dtok is not None and dtok.strip().lower() == "latest":
        # "Sync from now": GET /users/delta?$deltatoken=latest answers no objects and a deltaLink that later
        # returns only the changes made after this call (Microsoft Graph docs, "user: delta", optional query
        # parameters: "$deltatoken=latest ... returns an empty response with a deltaLink"; also "Use delta
        # query to track changes in Microsoft Graph data", section "Retrieve latest deltaLink").
        return {"since": None, "upto": tenant.directory_version, "after": None, "s": select_of(req),
                "n": delta_page_size(req), "latest": True}
    tok = decode_token(dtok if dtok is not None else stok or "")
    if not tok or tok.get("k") != "delta":
        raise Reject(400, "Request_BadRequest", "The specified delta or page token is malformed.")
    if tok.get("t") != tenant.tenant_id:
        raise Reject(400, "Request_BadRequest", "The specified delta token belongs to another tenant.")
    if tok.get("f") != fingerprint(tenant) or int(tok.get("upto", 0)) > tenant.directory_version:
        raise _sync_state_lost()
    select = select_of(req) or tok.get("s")
    explicit = req.q("top") is not None or "maxpagesize" in req.headers.get("prefer", "")
    size = delta_page_size(req) if explicit else int(tok.get("n") or 0)
    size = size or req.state.limits.delta_page_max
    if dtok is not None:
        return {"since": int(tok["upto"]), "upto": tenant.directory_version, "after": None, "s": select, "n": size}
    return {"since": tok.get("since"), "upto": int(tok["upto"]), "after": tok.get("a"), "s": select, "n": size}


async def users_delta(req: GraphRequest, m: re.Match[str]) -> GraphResponse:
    tenant = req.tenant
    if req.q("filter") is not None:  # Graph allows only "id eq '...' or ..." here; not emulated
        raise Reject(400, "Request_UnsupportedQuery", "$filter is not supported on users/delta by this tenant.")
    st = _delta_state(req)
    since, select, top = st["since"], st["s"], st["n"]
    if st.get("latest"):
        ids: list[str] = []
    elif since is None:
        ids = sorted_ids(tenant)
    else:
        changed = {uid for uid, u in tenant.users.items() if u.version > since}
        changed.update(uid for uid, (v, _) in tenant.deleted.items() if v > since)
        ids = sorted(changed)
    start = bisect_right(ids, st["after"]) if st["after"] else 0
    page = ids[start:start + top]
    value: list[dict[str, Any]] = []
    for uid in page:
        user = tenant.users.get(uid)
        if user is not None:
            value.append(project(user, select))
        elif uid in tenant.deleted:
            value.append({"@odata.type": "#microsoft.graph.user", "id": uid,
                          "@removed": {"reason": tenant.deleted[uid][1]}})
    token = {"k": "delta", "t": tenant.tenant_id, "f": fingerprint(tenant), "upto": st["upto"], "s": select,
             "n": top}
    body: dict[str, Any] = {"@odata.context": _context(req, "users", select)}
    if start + top < len(ids):
        token.update({"since": since, "a": page[-1]})
        body["@odata.nextLink"] = link(req, "/users/delta", {"$skiptoken": encode_token(token)})
    else:
        body["@odata.deltaLink"] = link(req, "/users/delta", {"$deltatoken": encode_token(token)})
    body["value"] = value
    return GraphResponse(200, body)
