"""The ASGI app: identity, Graph v1.0, SharePoint REST and the control API on one origin."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import BaseRoute

from . import control, faults, graph, graph_lists, identity, sharepoint
from .graph_router import GraphRouter
from .state import EmulatorState

__all__ = ["build_app"]


def build_app(state: EmulatorState) -> Starlette:
    router = GraphRouter()
    graph.register(router)
    graph_lists.register(router)
    routes: list[BaseRoute] = []
    routes += control.routes(state)
    routes += identity.routes(state)
    routes += graph.routes(state, router)
    routes += sharepoint.routes(state)
    app = Starlette(routes=routes)
    app.state.emulator = state
    return faults.wrap(app, state)
