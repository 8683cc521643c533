"""One run, watched: ``observing`` wraps it: it builds the monitor (fed by the scheduler's hooks), the metrics (when a metrics port
is set), the HTTP server and the alert sender (when a webhook or ``--on-needs-human`` is set), and takes them down
cleanly when the run ends.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from ..config import Settings
from ..http import REQUEST_HOOK, TrustConfig
from .alerts import AlertSender, parse_command
from .incidents import IncidentBook
from .metrics import JobMetrics
from .monitor import Monitor, ReplicaView
from .server import MetricsServer, build_app

__all__ = ["ALERTS_FILE", "observing", "wanted"]

ALERTS_FILE = "alerts.json"
CHECK_EVERY = 60.0  # seconds between checks of the secrets' expiry dates


def wanted(settings: Settings) -> bool:
    """Whether a run needs the monitor at all (metrics, a webhook or a command)."""
    return bool(settings.metrics_port or settings.alerts_webhook or settings.on_needs_human
                or any(a.alerts_webhook or a.secret_expires for a in settings.active_accounts))


@asynccontextmanager
async def observing(settings: Settings, scheduler: Any, setup_errors: Mapping[str, str],
                    replica: ReplicaView | None = None) -> AsyncIterator[Monitor | None]:
    """Watch one run of ``scheduler`` (and of this replica's lease rounds, with several replicas); yields the
    monitor (None when nothing is asked for)."""
    if not wanted(settings):
        yield None
        return
    command = parse_command(settings.on_needs_human) if settings.on_needs_human else None
    hooks = {a.id: a.alerts_webhook or settings.alerts_webhook for a in settings.active_accounts}
    sender = None
    if command or any(hooks.values()):
        sender = AlertSender(hooks.get, command, TrustConfig(settings.ca_bundle))
    monitor = Monitor(settings.active_accounts, IncidentBook(settings.state_dir / ALERTS_FILE),
                      interval=settings.interval, runtimes=scheduler.runtimes,
                      sink=sender.submit if sender else None)
    monitor.replica = replica
    metrics = server = None
    if settings.metrics_port:
        metrics = JobMetrics(monitor)
        monitor.on_cycle = metrics.cycle_done
        server = MetricsServer(build_app(metrics, monitor), settings.metrics_host, settings.metrics_port)
    token = REQUEST_HOOK.set(metrics.count_request) if metrics else None
    checker: asyncio.Task[None] | None = None
    try:
        if sender is not None:
            await sender.start()
        if server is not None:
            server.start()
        scheduler.observer = monitor
        for account, message in setup_errors.items():
            monitor.needs_human(account, message)
        checker = asyncio.ensure_future(_check_forever(monitor))
        yield monitor
    finally:
        if checker is not None:
            checker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await checker
        scheduler.observer = None
        if token is not None:
            REQUEST_HOOK.reset(token)
        if server is not None:
            await asyncio.to_thread(server.stop)
        if sender is not None:
            await sender.aclose()


async def _check_forever(monitor: Monitor) -> None:
    while True:
        monitor.check()
        await asyncio.sleep(CHECK_EVERY)
