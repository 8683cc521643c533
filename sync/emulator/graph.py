"""(being written)"""

from __future__ import annotations

from starlette.routing import BaseRoute

from .graph_router import GraphRouter
from .state import EmulatorState


def register(router: GraphRouter) -> None:
    pass


def routes(state: EmulatorState, router: GraphRouter) -> list[BaseRoute]:
    return []
