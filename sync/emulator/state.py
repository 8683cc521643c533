"""Everything one running emulator holds: tenants, tokens, budgets, counters, clock, faults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .graph.throttle import Budget, Throttle
from .identity.tokens import TokenStore
from .model.clock import Clock
from .model.presence import PresenceModel
from .model.presence_reads import PresenceReads
from .model.stats import Stats
from .model.tenant import World
from .sharepoint.quota import ResourceUnits

__all__ = ["EmulatorState", "Limits"]


@dataclass
class Limits:
    presence_requests: int = 1500  # per app per tenant per presence_window seconds
    presence_window: float = 30.0
    presence_max_ids: int = 650
    directory_requests: int = 2000  # per app per tenant per directory_window seconds
    directory_window: float = 10.0
    sharepoint_ru_per_minute: int = 1250  # resource units per app per tenant per rolling minute (SPO's tiers:
    # 1,250 / 2,500 / 3,750 / 5,000 / 6,250 by licence count; 1,250 is up to 1,000 licences)
    sharepoint_busy_after_violations: int = 2  # Nth early retry in a row gets 503 Server Too Busy (0: never)
    batch_max_requests: int = 20
    filter_max_values: int = 15
    page_default: int = 100
    page_max: int = 999
    users_page_cap: int = 0  # /users pages hold at most this many users whatever $top asks (0: no cap); Graph
    # may answer fewer items than $top, and a small cap makes a small tenant's directory read take many pages
    delta_page_max: int = 200  # users/delta: default and largest page (Prefer: odata.maxpagesize)
    token_lifetime: float = 3599.0
    device_code_interval: int = 0  # seconds MSAL waits between polls
    device_code_lifetime: int = 900
    unknown_presence_ids: str = "item"  # "item": PresenceUnknown object; "omit": left out

    def budgets(self) -> dict[str, Budget]:
        return {
            "presence": Budget(self.presence_requests, self.presence_window),
            "directory": Budget(self.directory_requests, self.directory_window),
        }


@dataclass
class EmulatorState:
    world: World
    limits: Limits = field(default_factory=Limits)
    clock: Clock = field(default_factory=Clock)
    stats: Stats = field(default_factory=Stats)
    tokens: TokenStore = field(init=False)
    throttle: Throttle = field(init=False)
    sp_quota: ResourceUnits = field(init=False)  # SharePoint's RU budgets (REST and Graph's list route)
    presence_reads: PresenceReads = field(default_factory=PresenceReads)  # freshness ground truth
    presence: PresenceModel = field(init=False)
    faults: Any = None  # faults.FaultConfig, set by the app factory
    device_codes: dict[str, Any] = field(default_factory=dict)  # identity module's pending device flows
    ca_file: str | None = None  # the CA clients must trust (reported by GET /_emulator/info)

    def __post_init__(self) -> None:
        self.tokens = TokenStore(lifetime=self.limits.token_lifetime)
        self.throttle = Throttle(self.limits.budgets())
        self.sp_quota = ResourceUnits(self.limits.sharepoint_ru_per_minute)
        self.presence = PresenceModel(self.world.presence_seed)

    def apply_limits(self) -> None:
        """Push changed Limits into the budgets and token lifetime."""
        self.throttle.budgets = self.limits.budgets()
        self.sp_quota.per_minute = self.limits.sharepoint_ru_per_minute
        self.tokens.lifetime = self.limits.token_lifetime
