"""``{site}/_layouts/15/download.aspx?UniqueId=...&tempauth=...``: where Graph's download redirects point.

The ``tempauth`` token stands in for the bearer token (as on SharePoint Online), so a client
follows the redirect without sending its own; an unknown or expired token gets 401.
"""

from __future__ import annotations

import time

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..state import EmulatorState

__all__ = ["routes"]


def routes(state: EmulatorState) -> list[BaseRoute]:
    async def download(request: Request) -> Response:
        await request.body()
        found = state.world.site_by_path("/sites/" + request.path_params["site"])
        token = request.query_params.get("tempauth", "")
        if found is None:
            return Response(b"File Not Found.", 404, media_type="text/plain")
        lib = found[1].library
        grant = lib.tempauth.get(token)
        if grant is None or grant[1] <= time.monotonic():
            state.stats.status[401] += 1
            return Response(b"Access denied.", 401, media_type="text/plain")
        f = lib.by_id(grant[0])
        if f is None or f.unique_id != request.query_params.get("UniqueId", "").strip("{}").lower():
            state.stats.status[404] += 1
            return Response(b"File Not Found.", 404, media_type="text/plain")
        state.stats.count("sharepoint.download")
        state.stats.status[200] += 1
        return Response(f.content, 200, media_type=f.mime_type, headers={"ETag": f.etag})

    return [Route("/sites/{site}/_layouts/15/download.aspx", download, methods=["GET"])]
