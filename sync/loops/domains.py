"""The domains loop: the tenant's verified domains, re-read every ``interval`` seconds (default 5 minutes).

New domains make the roster loop re-validate the Agent list; a failed read keeps the last known domains.
"""

from __future__ import annotations

import asyncio
import logging

from ..errors import GraphError
from ..graph.client import GraphClient
from ..graph.directory import fetch_domains
from ..validation import Domains
from .state import AccountState
from .ticker import Ticker, sleep_or_stop

__all__ = ["DomainsLoop"]

log = logging.getLogger(__name__)


class DomainsLoop:
    def __init__(self, state: AccountState, graph: GraphClient, *, interval: float) -> None:
        self.state = state
        self.graph = graph
        self.interval = interval

    async def step(self) -> None:
        self.state.publish_domains(Domains.from_graph(await fetch_domains(self.graph)))

    async def run(self, stop: asyncio.Event) -> None:
        ticker = Ticker(self.interval, stop)
        while await ticker.next():
            try:
                await self.step()
            except GraphError as exc:
                self.state.note_failure(f"domains could not be read: {exc}")
                if self.state.domains is None:  # nothing can be validated yet: try again soon
                    if await sleep_or_stop(stop, min(self.interval, 5.0)):
                        return
                    continue
                log.warning("account %s: domains re-read failed, using the last copy: %s",
                            self.state.account_id, exc)
