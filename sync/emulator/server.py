"""Run the emulator over HTTPS with uvicorn, in the foreground or in a background thread."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from .app import build_app
from .model.fixtures import load_world
from .model.tenant import World
from .state import EmulatorState, Limits
from .tls import TlsFiles, ensure_tls

__all__ = ["EmulatorServer", "bind_socket"]


class _QuietShutdown(logging.Filter):
    """Idle keep-alive connections are cut after the grace period; that is expected, not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "graceful shutdown" not in record.getMessage()


logging.getLogger("uvicorn.error").addFilter(_QuietShutdown())


class _ArrivalStampedH11(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, stamping each request with when its bytes were handed to the server: before any
    handler runs, so a request that was already on its way when another one's 429 went out is never judged to have
    come back before that 429's Retry-After (a handler's own clock would say it came in after)."""

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        before = getattr(self, "scope", None)
        super().data_received(data)
        scope = getattr(self, "scope", None)
        if scope is not None and scope is not before:
            scope.setdefault("arrived_at", now)  # type: ignore[typeddict-unknown-key]


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on sockets whose proto says TCP, and without
    # it Nagle + delayed ACKs add ~40 ms to every request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(512)
    sock.set_inheritable(True)
    return sock


@dataclass
class EmulatorServer:
    """A running local tenant. ``start()`` returns once it accepts connections.

    >>> srv = EmulatorServer(state_dir=Path(".state/emulator")).start()
    >>> srv.base_url, srv.tls.ca_cert
    """

    state_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    fixtures_dir: Path | None = None  # None: the tenants shipped in the package
    seed: int = 1
    limits: Limits = field(default_factory=Limits)
    world: World | None = None
    log_level: str = "warning"
    state: EmulatorState = field(init=False)
    tls: TlsFiles = field(init=False)
    _server: Any = field(init=False, default=None)
    _thread: threading.Thread | None = field(init=False, default=None)
    _sock: socket.socket | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        world = self.world or load_world(self.fixtures_dir, presence_seed=self.seed)
        self.state = EmulatorState(world=world, limits=self.limits)
        self.tls = ensure_tls(Path(self.state_dir).resolve())  # absolute, so printed paths work anywhere
        self.state.ca_file = str(self.tls.ca_cert)

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    def _config(self) -> uvicorn.Config:
        return uvicorn.Config(
            build_app(self.state), log_level=self.log_level, access_log=False,
            ssl_certfile=str(self.tls.server_cert), ssl_keyfile=str(self.tls.server_key),
            timeout_keep_alive=30, timeout_graceful_shutdown=2, lifespan="off", limit_concurrency=2000, backlog=512,
            http=_ArrivalStampedH11,
        )

    def _bind(self) -> socket.socket:
        self._sock = bind_socket(self.host, self.port)
        self.port = self._sock.getsockname()[1]
        return self._sock

    def start(self) -> EmulatorServer:
        """Serve in a daemon thread (tests, the demo)."""
        sock = self._bind()
        self._server = uvicorn.Server(self._config())
        self._thread = threading.Thread(target=lambda: asyncio.run(self._server.serve(sockets=[sock])),
                                        name="emulator", daemon=True)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the local tenant failed to start; see the log above")
            threading.Event().wait(0.01)
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until SIGINT/SIGTERM."""
        sock = self._sock or self._bind()
        self._server = uvicorn.Server(self._config())
        self._server.run(sockets=[sock])

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
