"""(being written)"""

from __future__ import annotations

from .graph_router import GraphRouter


def register(router: GraphRouter) -> None:
    pass
