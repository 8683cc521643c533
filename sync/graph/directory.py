"""The directory: verified domains, the whole user list, changes through /users/delta, lookups by UPN.

Cold start (empty cache): open a delta cursor first with ``GET /users/delta?$deltatoken=latest``, which
answers no users and a deltaLink that sees every change from that moment on; then read every user with
``GET /users?$top=999`` in parallel partitions of the UPN range (``$filter=userPrincipalName ge 'a' and
userPrincipalName le 'b'``). ``/users/delta`` pages hold at most about 200 users, so a full delta round of
100,000 users is ~500 pages one after another, while the partitioned read is 101 pages of 999, many at once.
Changes made while the read runs are caught by the cursor afterwards. Later rounds follow the deltaLink.

Graph documentation relied on (learn.microsoft.com/graph):
- api/user-delta: ``$deltatoken=latest`` returns an empty response with a deltaLink for changes from now;
  removed users come back with ``@removed``; ``$top`` is not supported on delta, pages are sized by the service.
- api/user-list and resources/user: ``$top`` 1..999; ``userPrincipalName`` supports ``$filter`` with
  ``eq``, ``ge``, ``le``, ``in`` and ``startsWith`` without advanced query parameters.
- concepts/paging: follow ``@odata.nextLink`` as an opaque absolute URL.

UPNs still missing from the cache are looked up in ``$batch`` requests of at most 20 ``GET /users/{upn}``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from ..errors import PermanentGraphError
from ..models import DirectoryUser
from .client import GraphClient

__all__ = ["DeltaResult", "UPN_PARTITIONS", "USER_SELECT", "fetch_domains", "follow_delta", "lookup_users",
           "open_delta_cursor", "read_all_users", "same_endpoint", "upn_partitions", "user_from_graph"]

log = logging.getLogger(__name__)

USER_SELECT = "id,userPrincipalName,displayName,mail,proxyAddresses,imAddresses,accountEnabled,userType"


def user_from_graph(d: dict[str, Any]) -> DirectoryUser:
    """A user from its Graph object; text equal to the UPN is held once (100,000 users stay in memory)."""
    upn = str(d.get("userPrincipalName") or "")
    mail = d.get("mail")
    return DirectoryUser(
        id=str(d["id"]).lower(),
        upn=upn,
        display_name=str(d.get("displayName") or ""),
        mail=upn if mail == upn else mail,
        proxy_addresses=tuple(d.get("proxyAddresses") or ()),
        im_addresses=tuple(upn if a == upn else a for a in d.get("imAddresses") or ()),
        account_enabled=d.get("accountEnabled") is not False,
        user_type=sys.intern(str(d.get("userType") or "Member")),
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


async def open_delta_cursor(client: GraphClient) -> str:
    """A deltaLink that sees every directory change from now on (``$deltatoken=latest``), without reading users."""
    start = f"users/delta?$select={USER_SELECT}&$deltatoken=latest"
    final = ""
    async for page in client.pages(start):
        final = page.get("@odata.deltaLink", final)
    if not final:
        raise PermanentGraphError("users/delta?$deltatoken=latest answered without an @odata.deltaLink",
                                  status=0, code="", request_id="")
    return final


# Bounds of the UPN partitions: everything up to '0', then '0'..'9' and 'a'..'z' (UPNs compare case-insensitively).
_BOUNDS = "0123456789abcdefghijklmnopqrstuvwxyz"
UPN_PARTITIONS = len(_BOUNDS) + 1


def upn_partitions() -> list[str]:
    """``$filter`` clauses that together cover every UPN. Adjacent ranges share only their one-character bound,
    and a UPN always holds an ``@``, so no UPN equals a bound and none is read twice."""
    out = [f"userPrincipalName le '{_BOUNDS[0]}'"]
    out += [f"userPrincipalName ge '{lo}' and userPrincipalName le '{hi}'"
            for lo, hi in zip(_BOUNDS, _BOUNDS[1:], strict=False)]
    out.append(f"userPrincipalName ge '{_BOUNDS[-1]}'")
    return out


async def read_all_users(client: GraphClient, *, concurrency: int = 12,
                         on_page: Callable[[list[DirectoryUser], bool], None] | None = None) -> list[DirectoryUser]:
    """Every user: one ``GET /users?$top=999`` when that holds them all, else parallel UPN-range partitions.

    ``on_page(users, last_of_partition)`` sees each page as it arrives, so a cold start can resolve agents
    before the read is done (a small directory is one page, reported as one partition done).
    """
    users: dict[str, DirectoryUser] = {}

    def take(page: dict[str, Any], last: bool) -> None:
        got = [user_from_graph(d) for d in page.get("value", []) if d.get("userPrincipalName")]
        for u in got:
            users[u.id] = u
        if on_page is not None:
            on_page(got, last)

    first = await client.call("GET", f"users?$select={USER_SELECT}&$top=999")
    if "@odata.nextLink" not in first:
        take(first, True)
        return list(users.values())
    gate = asyncio.Semaphore(concurrency)

    async def partition(clause: str) -> None:
        async with gate:
            async for page in client.pages(f"users?$select={USER_SELECT}&$top=999&$filter={clause}"):
                take(page, "@odata.nextLink" not in page)
    await asyncio.gather(*(partition(c) for c in upn_partitions()))
    return list(users.values())


def same_endpoint(client: GraphClient, delta_link: str) -> bool:
    """Whether a saved deltaLink belongs to this client's Graph endpoint (a config may point elsewhere now)."""
    return urlsplit(delta_link).netloc.lower() == urlsplit(client.graph_url).netloc.lower()


async def follow_delta(client: GraphClient, delta_link: str) -> DeltaResult:
    """The changes since a saved deltaLink (PermanentGraphError 400/410 when Graph no longer knows it)."""
    return await _delta_round(client, delta_link, full=False)


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
