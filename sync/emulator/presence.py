"""Placeholder presence model (replaced by the seeded time-driven model)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from .model import Tenant, User

__all__ = ["PresenceModel"]


class PresenceModel:
    def __init__(self, seed: int = 1) -> None:
        self.seed = seed

    def presence(self, tenant: Tenant, user: User, at: datetime) -> dict[str, Any]:
        if not user.teams_licensed:
            return {"id": user.id, "availability": "PresenceUnknown", "activity": "PresenceUnknown"}
        return {"id": user.id, "availability": "Available", "activity": "Available"}

    def transitions(self, tenant: Tenant, users: Iterable[User], since: datetime,
                    until: datetime) -> list[dict[str, Any]]:
        return []
