"""The directory: verified domains, the whole user list, changes through /users/delta, lookups by UPN.

Cold start (empty cache): open a delta cursor first with ``GET /users/delta?$deltatoken=latest``, which
answers no users and a deltaLink that sees every change from that moment on; then read every user with
``GET /users?$top=999`` in parallel partitions of the UPN space. ``/users/delta`` pages hold at most about
200 users, so a full delta round of 100,000 users is ~500 pages one after another, while a partitioned read is
101 pages of 999, many at once. Changes made while the read runs are caught by the cursor afterwards. Later
rounds follow the deltaLink.

Each of these is a shape a tenant may refuse (``shapes.py`` holds the ladders). The read goes, fastest first:
partitions by ``startsWith(userPrincipalName,'x')`` for every character a UPN may start with (documented as
supported by default), UPN ranges (``ge``/``le``), the same ranges as advanced queries (``ConsistencyLevel:
eventual`` + ``$count=true``), one ``/users`` read page after page, and a full ``/users/delta`` round (which
brings its own cursor). When ``$deltatoken=latest`` is refused, a full delta round beside the read gives the
cursor.

Graph documentation relied on (learn.microsoft.com/graph):
- api/user-delta: ``$deltatoken=latest`` returns an empty response with a deltaLink for changes from now;
  removed users come back with ``@removed``; ``$top`` is not supported on delta, pages are sized by the service.
- api/user-list, resources/user and concepts/aad-advanced-queries: ``$top`` 1..999; ``userPrincipalName``
  supports ``eq``, ``le``, ``in`` and ``startsWith`` by default; the rest needs advanced query parameters.
- resources/user: a UPN holds only ``A-Z a-z 0-9 ' . - _ ! # ^ ~`` before the ``@``.
- concepts/paging: follow ``@odata.nextLink`` as an opaque absolute URL.

UPNs still missing from the cache are looked up in ``$batch`` requests of at most 20 ``GET /users/{upn}``, or
one by one when the tenant refuses ``$batch``.
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
from ..http import Pacer
from ..models import DirectoryUser
from .client import GraphClient
from .shapes import is_refusal

__all__ = ["ADVANCED", "DeltaResult", "UPN_PARTITIONS", "USER_SELECT", "fetch_domains", "follow_delta",
           "full_delta_round", "lookup_users", "open_delta_cursor", "partitions_for", "read_all_users",
           "same_endpoint", "startswith_partitions", "upn_partitions", "user_from_graph"]

log = logging.getLogger(__name__)

ADVANCED = {"ConsistencyLevel": "eventual"}  # with $count=true: Graph's advanced query parameters
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


async def _delta_round(client: GraphClient, start: str, full: bool,
                       on_page: Callable[[list[DirectoryUser], bool], None] | None = None) -> DeltaResult:
    upserts: list[DirectoryUser] = []
    removed: list[str] = []
    final = ""
    async for page in client.pages(start):
        got = []
        for d in page.get("value", []):
            if "@removed" in d:
                removed.append(str(d["id"]).lower())
            elif d.get("userPrincipalName"):
                got.append(user_from_graph(d))
        upserts.extend(got)
        if on_page is not None:
            on_page(got, "@odata.nextLink" not in page)
        final = page.get("@odata.deltaLink", final)
    if not final:
        raise PermanentGraphError("users/delta ended without an @odata.deltaLink", status=0, code="", request_id="")
    return DeltaResult(upserts, removed, final, full)


async def open_delta_cursor(client: GraphClient) -> str | None:
    """A deltaLink that sees every directory change from now on (``$deltatoken=latest``), without reading users;
    None when the tenant refuses that shape (then ``full_delta_round`` gives the cursor)."""
    book = client.shapes
    if book.current("cursor") != "deltatoken-latest":
        return None
    start = f"users/delta?$select={USER_SELECT}&$deltatoken=latest"
    final = ""
    try:
        async for page in client.pages(start):
            final = page.get("@odata.deltaLink", final)
    except PermanentGraphError as exc:
        if not is_refusal(exc):
            raise
        book.refuse("cursor", "deltatoken-latest", exc)
        return None
    if not final:
        raise PermanentGraphError("users/delta?$deltatoken=latest answered without an @odata.deltaLink",
                                  status=0, code="", request_id="")
    return final


async def full_delta_round(client: GraphClient, ladder: str = "cursor",
                           on_page: Callable[[list[DirectoryUser], bool], None] | None = None) -> DeltaResult:
    """Every user through ``/users/delta`` from the start, and the deltaLink at its end (the shape that always
    works; slow: ~200 users a page, one page after another)."""
    try:
        return await _delta_round(client, f"users/delta?$select={USER_SELECT}", full=True, on_page=on_page)
    except PermanentGraphError as exc:
        if is_refusal(exc):
            client.shapes.refuse(ladder, "delta-round" if ladder == "cursor" else "delta", exc)
        raise


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


# A UPN starts with one of these (resources/user: A-Z a-z 0-9 ' . - _ ! # ^ ~ before the @; compared without
# regard to case), or with "$" (user-get: such UPNs are addressed as /users('$x@y.com')).
_FIRST = "0123456789abcdefghijklmnopqrstuvwxyz'.-_!#^~$"


def _literal(text: str) -> str:
    """An OData string literal for a URL: quotes doubled, ``#`` sent as ``%23`` (a URL fragment otherwise)."""
    return "'" + text.replace("'", "''").replace("#", "%23") + "'"


def startswith_partitions() -> list[str]:
    """``$filter`` clauses, one per first character a UPN may have (a default query on every tenant)."""
    return [f"startswith(userPrincipalName,{_literal(c)})" for c in _FIRST]


def partitions_for(shape: str) -> int:
    """How many partitions the directory read of ``shape`` has (1 when it is not partitioned)."""
    return len(_FIRST) if shape == "startswith" else UPN_PARTITIONS if shape in ("ranges", "advanced") else 1


OnPage = Callable[[list[DirectoryUser], bool], None]


async def _partitions(client: GraphClient, clauses: Sequence[str], advanced: bool,
                      take: Callable[[dict[str, Any], bool], None], concurrency: int) -> None:
    """Every partition, ``concurrency`` at a time; the first failure stops the others and is raised."""
    gate = asyncio.Semaphore(concurrency)
    extra, headers = ("&$count=true", ADVANCED) if advanced else ("", None)

    async def one(clause: str) -> None:
        async with gate:
            path = f"users?$select={USER_SELECT}&$top=999{extra}&$filter={clause}"
            async for page in client.pages(path, headers=headers):
                take(page, "@odata.nextLink" not in page)
    tasks = [asyncio.ensure_future(one(c)) for c in clauses]
    try:
        await asyncio.gather(*tasks)
    finally:  # a refused partition ends the others: the next rung reads every user again
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def read_all_users(client: GraphClient, *, concurrency: int = 12,
                         on_page: OnPage | None = None) -> tuple[list[DirectoryUser], str | None]:
    """Every user, by the fastest shape the tenant accepts, and the deltaLink when the read was a delta round.

    ``on_page(users, last_of_partition)`` sees each page as it arrives, so a cold start can resolve agents
    before the read is done (a small directory is one page, reported as one partition done).
    """
    users: dict[str, DirectoryUser] = {}
    book = client.shapes

    def take(page: dict[str, Any], last: bool) -> None:
        got = [user_from_graph(d) for d in page.get("value", []) if d.get("userPrincipalName")]
        for u in got:
            users[u.id] = u
        if on_page is not None:
            on_page(got, last)

    def delta_page(got: list[DirectoryUser], last: bool) -> None:
        for u in got:
            users[u.id] = u
        if on_page is not None:
            on_page(got, last)

    plain = f"users?$select={USER_SELECT}&$top=999"
    first: dict[str, Any] | None = None
    if book.current("directory") != "delta":
        try:
            first = await client.call("GET", plain)
        except PermanentGraphError as exc:
            if not is_refusal(exc):
                raise
            book.refuse("directory", "paging", exc)
    if first is not None:
        single = "@odata.nextLink" not in first
        take(first, single)
        if single:
            return list(users.values()), None
    while True:
        shape = book.current("directory")
        try:
            if shape in ("startswith", "ranges", "advanced"):
                clauses = startswith_partitions() if shape == "startswith" else upn_partitions()
                await _partitions(client, clauses, shape == "advanced", take, concurrency)
            elif shape == "paging":
                assert first is not None
                async for page in client.pages(str(first["@odata.nextLink"])):
                    take(page, "@odata.nextLink" not in page)
            else:
                result = await full_delta_round(client, "directory", on_page=delta_page)
                return list(users.values()), result.delta_link
            return list(users.values()), None
        except PermanentGraphError as exc:
            if not is_refusal(exc) or shape == "delta":
                raise
            book.refuse("directory", shape, exc)


def same_endpoint(client: GraphClient, delta_link: str) -> bool:
    """Whether a saved deltaLink belongs to this client's Graph endpoint (a config may point elsewhere now)."""
    return urlsplit(delta_link).netloc.lower() == urlsplit(client.graph_url).netloc.lower()


async def follow_delta(client: GraphClient, delta_link: str) -> DeltaResult:
    """The changes since a saved deltaLink (PermanentGraphError 400/410 when Graph no longer knows it)."""
    return await _delta_round(client, delta_link, full=False)


def user_path(upn: str) -> str:
    """``/users/{upn}`` with everything but the plain UPN characters percent-encoded (``#`` -> ``%23``)."""
    return "/users/" + quote(upn, safe="@._-!^~'") + f"?$select={USER_SELECT}"


async def lookup_users(client: GraphClient, upns: Iterable[str], *, pace: Pacer | None = None,
                       concurrency: int = 1) -> dict[str, DirectoryUser | None]:
    """Each UPN -> its user (or None when Graph says 404), 20 per ``$batch`` (one by one when the tenant refuses
    ``$batch``); ``pace`` is acquired once per user looked up, ``concurrency`` groups of 20 go at once."""
    wanted = list(dict.fromkeys(u.lower() for u in upns))
    found: dict[str, DirectoryUser | None] = {}
    gate = asyncio.Semaphore(max(1, concurrency))

    async def group(chunk: Sequence[str]) -> None:
        async with gate:
            if pace is not None:
                for _ in chunk:
                    await pace.acquire()
            if client.shapes.current("batch") == "batch":
                try:
                    found.update(await _lookup_batch(client, chunk))
                    return
                except PermanentGraphError as exc:
                    if not is_refusal(exc):
                        raise
                    client.shapes.refuse("batch", "batch", exc)
            await asyncio.gather(*(_lookup_one(client, upn, found) for upn in chunk))

    await asyncio.gather(*(group(wanted[i:i + 20]) for i in range(0, len(wanted), 20)))
    return found


async def _lookup_batch(client: GraphClient, chunk: Sequence[str]) -> dict[str, DirectoryUser | None]:
    found: dict[str, DirectoryUser | None] = {}
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


async def _lookup_one(client: GraphClient, upn: str, found: dict[str, DirectoryUser | None]) -> None:
    try:
        found[upn] = user_from_graph(await client.call("GET", user_path(upn)))
    except PermanentGraphError as exc:
        if exc.status == 404:
            found[upn] = None
        else:
            log.warning("account %s: lookup of a UPN answered HTTP %s", client.account_id, exc.status)

