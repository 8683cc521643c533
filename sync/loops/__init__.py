"""One loop per concern, per account; they meet only through immutable snapshots in ``AccountState``.

::

    domains  (5 min) ──Domains──┐
                                ▼
    roster + directory (60 s) ──Targets──▶ presence (every N s) ──presences──▶ write-back (60 s)
      Agent list, /users delta,             getPresencesByUserId,               Agent list $batch,
      lookups, validation                   all chunks at once,                 longest-wrong first,
      (worker threads)                      presence budget                     SharePoint RU budget

The presence loop reads whichever Targets is current when its tick starts and never waits for another loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..config import WriteBackColumns
from ..graph.client import GraphClient
from ..outputs.folder import Outputs
from ..store import Store
from .domains import DomainsLoop
from .presence import PresenceLoop, cycle_line
from .reports import ReportsLoop
from .roster import DirectoryProgress, RosterLoop, RosterSource
from .state import AccountState, Targets
from .writeback import WriteBackLoop, writeback_values

__all__ = ["AccountLoops", "AccountState", "Cadence", "RosterSource", "Targets", "cycle_line", "writeback_values"]


@dataclass(frozen=True)
class Cadence:
    roster_interval: float = 60.0  # re-read the Agent list and the directory delta
    domains_interval: float = 300.0
    writeback_interval: float = 60.0
    lookup_limit: int = 400  # UPNs missing from the cache looked up per roster refresh
    # seconds a failing presence chunk is retried before its agents go stale; a running loop also stops retrying
    # when its next tick is due (that tick asks again)
    presence_deadline: float = 30.0


@dataclass
class AccountLoops:
    """The four loops of one account and the state they share."""

    account_id: str
    presence_graph: GraphClient
    graph: GraphClient
    roster: RosterSource
    store: Store
    cadence: Cadence = field(default_factory=Cadence)
    interval: float = 5.0
    columns: WriteBackColumns = field(default_factory=WriteBackColumns)
    dry_run: bool = False
    writeback_enabled: bool = True
    progress: DirectoryProgress | None = None
    report_dry_run: Callable[[Mapping[int, Mapping[str, str]]], None] | None = None
    outputs: Outputs | None = None

    def __post_init__(self) -> None:
        self.state = AccountState(self.account_id)
        c = self.cadence
        self.domains = DomainsLoop(self.state, self.graph, interval=c.domains_interval)
        self.roster_loop = RosterLoop(self.state, self.graph, self.roster, self.store, None,
                                      interval=c.roster_interval, lookup_limit=c.lookup_limit,
                                      progress=self.progress)
        self.presence: PresenceLoop | None = None
        self.reports: ReportsLoop | None = None  # set when the account has <Reports> (see runtime)
        self.writeback = WriteBackLoop(self.state, self.roster, self.store, self.columns,
                                       interval=c.writeback_interval, dry_run=self.dry_run,
                                       report_dry_run=self.report_dry_run, progress=self.progress)

    def attach(self, outputs: Outputs) -> PresenceLoop:
        """Bind the loops to the output folder (once); returns the presence loop."""
        if self.presence is None:
            self.outputs = outputs
            self.roster_loop.outputs = outputs
            self.presence = PresenceLoop(self.state, self.presence_graph, self.store, outputs,
                                         interval=self.interval, deadline=self.cadence.presence_deadline,
                                         display_names=self.roster_loop.users_by_id)
        return self.presence
