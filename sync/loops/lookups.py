"""Presence first: a cold start whose directory read is slow, falling back or failing looks its agents up.

Exact ``GET /users/{upn}`` lookups (20 per ``$batch`` when the tenant allows it) of the Agent list's UPNs, at
the pace of a budget of their own, well under the directory's limits; each group found is published at once, so
presence starts for those agents within seconds of the Agent list, whatever the directory read is doing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from ..errors import GraphError
from ..graph.client import GraphClient
from ..graph.directory import lookup_users
from ..http import Pacer
from ..models import AgentRow
from ..validation import DirectoryIndex, is_valid_upn, normalize

__all__ = ["agent_list", "early_lookups"]

log = logging.getLogger("sync.loops.roster")

GROUP = 200  # UPNs per round of lookups: published after each round


async def agent_list(roster_task: asyncio.Future[list[AgentRow]] | None, rows: list[AgentRow] | None
                     ) -> list[AgentRow]:
    """The Agent list a cold start was given, or the one its roster read brings (never cancelled from here)."""
    if rows is not None:
        return rows
    assert roster_task is not None
    return await asyncio.shield(roster_task)


async def early_lookups(graph: GraphClient, agent_list: Awaitable[list[AgentRow]], index: DirectoryIndex,
                        read_done: asyncio.Event, publish: Callable[[bool], None], *, pace: Pacer,
                        wait: float) -> None:
    """Once the Agent list is known and the read is not done ``wait`` seconds later, look up every UPN the
    index does not hold yet, adding who is found to ``index`` and publishing; ends when the read is done."""
    try:
        rows = await agent_list
    except Exception:  # noqa: BLE001 - the roster step reports the Agent list's failure itself
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(read_done.wait(), timeout=wait)
    wanted = [u for u in dict.fromkeys(normalize(r.raw_upn)[0] for r in rows) if u and is_valid_upn(u)]
    done = 0
    for i in range(0, len(wanted), GROUP):
        if read_done.is_set():
            return
        chunk = [u for u in wanted[i:i + GROUP] if u not in index.by_upn]
        try:
            found = await lookup_users(graph, chunk, pace=pace, concurrency=2)
        except GraphError as exc:
            log.warning("account %s: looking agents up while the directory is read failed: %s", graph.account_id,
                        exc)
            return
        users = [u for u in found.values() if u is not None and u.id not in index.by_id]
        index.add(users)
        done += len(users)
        publish(True)
    if done:
        log.info("account %s: %d agent(s) resolved by exact lookups while the directory was read",
                 graph.account_id, done)
