"""The directory: verified domains, the whole user list through /users/delta, and lookups by UPN.

The local cache (the store) is filled with one full delta round and kept current with the
deltaLink, so resolving 30,000 agents costs no Graph request. UPNs still missing from the cache
are looked up in ``$batch`` requests of at most 20 ``GET /users/{upn}``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from ..errors import PermanentGraphError
from ..models import DirectoryUser
from .client import GraphClient

__all__ = ["DeltaResult", "USER_SELECT", "fetch_domains", "lookup_users", "sync_delta", "user_from_graph"]

log = logging.getLogger(__name__)

USER_SELECT = "id,userPrincipalName,displayName,mail,proxyAddresses,imAddresses,accountEnabled,userType"


def user_from_graph(d: dict[str, Any]) -> DirectoryUser:
    return DirectoryUser(
        id=str(d["id"]).lower(),
        upn=str(d.get("userPrincipalName") or ""),
        display_name=str(d.get("displayName") or ""),
        mail=d.get("mail"),
        proxy_addresses=tuple(d.get("proxyAddresses") or ()),
        im_addresses=tuple(d.get("imAddresses") or ()),
        account_enabled=d.get("accountEnabled") is not False,
        user_type=str(d.get("userType") or "Member"),
    )


async def fetch_domains(client: GraphClient) -> list[dict[str, Any]]:
    """``GET /domains``: every domain with ``id`` and ``isVerified``."""
    reply = await client.call("GET", "domains")
    return list(reply.get("value", []))


@dataclass
class DeltaResult:
    upserts: list[DirectoryUser]
    removed: list[str]
    delta_link: str
    full: bool  # True when this was a full (initial) round


async def sync_delta(client: GraphClient, delta_link: str | None) -> DeltaResult:
    """One delta round: from scratch (``delta_link`` None) or the changes since ``delta_link``.

    A delta token the service no longer knows (HTTP 410 / syncStateNotFound) restarts from scratch.
    """
    if delta_link and urlsplit(delta_link).netloc.lower() != urlsplit(client.graph_url).netloc.lower():
        log.info("account %s: the saved delta link is for another Graph endpoint; re-reading the directory",
                 client.account_id)
        delta_link = None
    start = delta_link or f"users/delta?$select={USER_SELECT}"
    try:
        return await _delta_round(client, start, full=delta_link is None)
    except PermanentGraphError as exc:
        if delta_link and (exc.status in (400, 410) or "syncState" in (exc.code or "")):
            log.warning("account %s: delta token rejected (%s); re-reading the whole directory",
                        client.account_id, exc.code or exc.status)
            return await _delta_round(client, f"users/delta?$select={USER_SELECT}", full=True)
        raise


async def _delta_round(client: GraphClient, start: str, full: bool) -> DeltaResult:
    upserts: list[DirectoryUser] = []
    removed: list[str] = []
    final = ""
    async for page in client.pages(start):
        for d in page.get("value", []):
            if "@removed" in d:
                removed.append(str(d["id"]).lower())
            elif d.get("userPrincipalName"):
                upserts.append(user_from_graph(d))
        final = page.get("@odata.deltaLink", final)
    if not final:
        raise PermanentGraphError("users/delta ended without an @odata.deltaLink", status=0, code="", request_id="")
    return DeltaResult(upserts, removed, final, full)


def user_path(upn: str) -> str:
    """``/users/{upn}`` with everything but the plain UPN characters percent-encoded (``#`` -> ``%23``)."""
    return "/users/" + quote(upn, safe="@._-!^~'") + f"?$select={USER_SELECT}"


async def lookup_users(client: GraphClient, upns: Iterable[str]) -> dict[str, DirectoryUser | None]:
    """Each UPN -> its user (or None when Graph says 404), 20 per ``$batch``."""
    wanted = list(dict.fromkeys(u.lower() for u in upns))
    found: dict[str, DirectoryUser | None] = {}
    for i in range(0, len(wanted), 20):
        chunk: Sequence[str] = wanted[i:i + 20]
        reqs = [{"id": str(n), "method": "GET", "url": user_path(upn)} for n, upn in enumerate(chunk)]
        replies = await client.batch(reqs)
        for n, upn in enumerate(chunk):
            item = replies.get(str(n), {})
            status = int(item.get("status", 0))
            if status == 200 and isinstance(item.get("body"), dict):
                found[upn] = user_from_graph(item["body"])
            elif status == 404:
                found[upn] = None
            else:
                log.warning("account %s: lookup of a UPN answered HTTP %s", client.account_id, status)
    return found
