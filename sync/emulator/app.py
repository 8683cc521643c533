"""The ASGI app: identity, Graph v1.0, SharePoint REST and the control API on one origin."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware.gzip import GZipMiddleware
from starlette.routing import BaseRoute
from starlette.types import ASGIApp

from .control import api as control
from .faults import layer as faults
from .graph import http as graph
from .graph.router import GraphRouter
from .identity import endpoints as identity
from .sharepoint import download as sharepoint_download
from .sharepoint import rest as sharepoint
from .state import EmulatorState

__all__ = ["build_app"]


def build_app(state: EmulatorState) -> ASGIApp:
    router = GraphRouter()
    graph.register(router)
    routes: list[BaseRoute] = []
    routes += control.routes(state)
    routes += identity.routes(state)
    routes += graph.routes(state, router)
    routes += sharepoint.routes(state)
    routes += sharepoint_download.routes(state)
    app = Starlette(routes=routes)
    app.state.emulator = state
    # Graph and SharePoint Online compress responses for clients that send Accept-Encoding: gzip; outside the
    # fault layer, so injected faults (truncated or malformed JSON) are made on the plain body.
    return GZipMiddleware(faults.wrap(app, state), minimum_size=1400, compresslevel=5)
