"""Presence for many users at once: getPresencesByUserId in chunks of at most 650 ids, all sent at once.

Exactly ceil(ids / 650) calls per round. Every chunk goes through the app's presence budget (1,500 requests
per 30 s per app and tenant, paced at 1,450), which alone decides how many are in flight; Retry-After is
honoured and transient failures are retried. A chunk that still fails is reported back, so its agents are
marked stale; it never fails the whole round.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import GraphError
from .client import GraphClient

__all__ = ["MAX_IDS_PER_CALL", "UNKNOWN", "PresenceResult", "PresenceTuple", "compact", "fetch_presences"]

log = logging.getLogger(__name__)

MAX_IDS_PER_CALL = 650


# What the job keeps of one presence object: (sequenceNumber, availability, activity, status message text,
# out of office). Extracted as each reply arrives, so the replies' JSON (about ten objects per agent) dies
# at once instead of living until the whole round is in.
PresenceTuple = tuple[str, str, str, str, bool]
UNKNOWN: PresenceTuple = ("", "PresenceUnknown", "PresenceUnknown", "", False)


def _text(msg: Any) -> str:
    if isinstance(msg, dict):
        inner = msg.get("message")
        if isinstance(inner, dict):
            return str(inner.get("content") or "")
    return ""


def compact(item: dict[str, Any]) -> PresenceTuple:
    ooo = item.get("outOfOfficeSettings")
    msg = item.get("statusMessage")
    return (str(item.get("sequenceNumber") or ""), str(item.get("availability") or "PresenceUnknown"),
            str(item.get("activity") or "PresenceUnknown"), _text(msg) if msg else "",
            bool(ooo.get("isOutOfOffice")) if isinstance(ooo, dict) else False)


@dataclass
class PresenceResult:
    by_id: dict[str, PresenceTuple] = field(default_factory=dict)  # user id (lower-case) -> compact presence
    same: set[str] = field(default_factory=set)  # ids answered with the sequenceNumber the caller already knew
    failed_ids: set[str] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)


async def _chunk(client: GraphClient, ids: Sequence[str], deadline: float | None,
                 lane: int = 0) -> list[dict[str, Any]]:
    reply = await client.call("POST", "communications/getPresencesByUserId", body={"ids": list(ids)},
                              bucket="presence", deadline=deadline, lane=lane)
    value = reply.get("value") if isinstance(reply, dict) else None
    if not isinstance(value, list):
        raise GraphError("getPresencesByUserId answered without a 'value' list")
    return value


async def fetch_presences(client: GraphClient, user_ids: Sequence[str], *, chunk_size: int = MAX_IDS_PER_CALL,
                          concurrency: int | None = None, deadline: float | None = None,
                          known: Mapping[str, str] | None = None) -> PresenceResult:
    """Presence of every id; ids are de-duplicated; chunks run ``concurrency`` at a time (None: all at once).

    ``known`` (user id -> sequenceNumber) names what the caller already holds: an id answered with the same
    ``sequenceNumber`` lands in ``same`` and is not unpacked, which is most ids in most rounds.
    """
    if not 1 <= chunk_size <= MAX_IDS_PER_CALL:
        raise ValueError(f"chunk_size must be 1..{MAX_IDS_PER_CALL}")
    unique = list(dict.fromkeys(user_ids))
    chunks = [unique[i:i + chunk_size] for i in range(0, len(unique), chunk_size)]
    result = PresenceResult()
    gate = asyncio.Semaphore(concurrency or max(1, len(chunks)))

    async def run(chunk: list[str], lane: int) -> None:
        async with gate:
            try:
                items = await _chunk(client, chunk, deadline, lane)
            except GraphError as exc:
                result.failed_ids.update(chunk)
                result.errors.append(f"{len(chunk)} ids: {exc}")
                log.warning("account %s: presence chunk of %d ids failed: %s", client.account_id, len(chunk), exc)
                return
            seen = known.get if known else None
            by_id, same = result.by_id, result.same
            for item in items:
                uid = item.get("id")
                if not isinstance(uid, str):
                    continue
                uid = uid.lower()
                seq = item.get("sequenceNumber")
                if seq and seen is not None and seen(uid) == seq:
                    same.add(uid)
                else:
                    by_id[uid] = compact(item)
    await asyncio.gather(*(run(c, n) for n, c in enumerate(chunks)))
    return result
