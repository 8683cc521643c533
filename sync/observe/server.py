"""``/metrics``, ``/healthz`` and ``/readyz`` over HTTP, served by uvicorn in a thread of its own.

A scrape computes its gauges in this thread, so it never runs on the job's event loop; the socket is bound
before the thread starts, so a port in use is a clear error at start-up, not a log line from a thread.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ..errors import UsageError
from .metrics import CONTENT_TYPE, JobMetrics
from .monitor import Monitor

__all__ = ["MetricsServer", "build_app", "free_port"]

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (for the demo)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def build_app(metrics: JobMetrics | None, monitor: Monitor) -> Starlette:
    async def scrape(_: Request) -> Response:
        if metrics is None:
            return PlainTextResponse("metrics are off\n", status_code=404)
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok\n")

    async def readyz(_: Request) -> Response:
        ready, body = monitor.readiness()
        return JSONResponse(body, status_code=200 if ready else 503)

    return Starlette(routes=[Route("/metrics", scrape), Route("/healthz", healthz), Route("/readyz", readyz)])


class MetricsServer:
    """uvicorn on a socket bound at construction; ``stop`` ends it and joins the thread."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((host, port))
            self.sock.listen(64)
        except OSError as exc:
            self.sock.close()
            raise UsageError(f"--metrics-port {port}: cannot listen on {host}:{port}: {exc.strerror or exc}.",
                             hint="Choose a free port (--metrics-port / MsGraphPresenceSource/@MetricsPort) or "
                                  "stop what uses it.") from None
        self.host, self.port = host, port
        self.url = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._serve, name="metrics-server", daemon=True)

    def _serve(self) -> None:
        asyncio.run(self.server.serve(sockets=[self.sock]))

    def start(self) -> None:
        self.thread.start()
        log.info("metrics on %s/metrics (health: /healthz, readiness: /readyz)", self.url)

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()
