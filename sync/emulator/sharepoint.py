"""(being written)"""

from __future__ import annotations

from starlette.routing import BaseRoute

from .state import EmulatorState


def routes(state: EmulatorState) -> list[BaseRoute]:
    return []
