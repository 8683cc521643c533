"""Deliver alerts without ever holding up the loops: a background task with its own queue.

Each alert goes to its account's webhook (a JSON POST through httpx, trusting the configured CAs, retried a
bounded number of times on 429/5xx/network errors) and to ``--on-needs-human CMD``: the command runs without a
shell, with the alert in ``PRESENCE_SYNC_ACCOUNT`` / ``_KIND`` / ``_STATE`` / ``_MESSAGE`` / ``_ACTION`` /
``_SINCE`` and as JSON on stdin, and is killed after ``command_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shlex
import shutil
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx

from ..errors import UsageError
from ..http import USER_AGENT, TrustConfig, retrying
from .incidents import Alert

__all__ = ["AlertSender", "parse_command"]

log = logging.getLogger(__name__)

QUEUE_MAX = 1000
_SECRET_ENV = ("PRESENCE_SYNC_SECRET__", "PRESENCE_SYNC_PASSWORD__")


def parse_command(command: str) -> list[str]:
    """``--on-needs-human`` split into arguments like a POSIX shell would (it is never run by one)."""
    try:
        args = shlex.split(command)
    except ValueError as exc:
        raise UsageError(f"--on-needs-human {command!r}: cannot be split into arguments ({exc}).",
                         hint="Quote arguments with spaces, e.g. --on-needs-human '/usr/local/bin/page-oncall "
                              "--team ops'.") from None
    if not args:
        raise UsageError("--on-needs-human is empty.", hint="Name a program to run, or leave the option out.")
    if shutil.which(args[0]) is None:
        raise UsageError(f"--on-needs-human: no program {args[0]!r} (not found, or not executable).",
                         hint="Give the program's full path, and make it executable.")
    return args


class AlertSender:
    """A queue of alerts and the task that sends them, in order, to the webhook and the command."""

    def __init__(self, webhook_for: Callable[[str], str | None], command: list[str] | None, trust: TrustConfig,
                 *, attempts: int = 4, timeout: float = 10.0, command_timeout: float = 30.0) -> None:
        self.webhook_for = webhook_for
        self.command = command
        self.trust = trust
        self.attempts = attempts
        self.timeout = timeout
        self.command_timeout = command_timeout
        self.sent = 0
        self.failed = 0
        self._queue: asyncio.Queue[Alert] = asyncio.Queue(QUEUE_MAX)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._http = httpx.AsyncClient(verify=self.trust.ssl_context(), timeout=httpx.Timeout(self.timeout),
                                       headers={"User-Agent": USER_AGENT}, trust_env=False)
        self._task = asyncio.ensure_future(self._run())

    def submit(self, alert: Alert) -> None:
        """Queue an alert; safe from any thread, never blocks (a full queue drops it, with a warning)."""
        if self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._put, alert)

    def _put(self, alert: Alert) -> None:
        try:
            self._queue.put_nowait(alert)
        except asyncio.QueueFull:
            log.warning("alert queue full: dropped %s alert for account %s", alert.kind, alert.account)

    async def _run(self) -> None:
        while True:
            alert = await self._queue.get()
            try:
                await self._deliver(alert)
            except Exception:  # a defect must not end alerting for the rest of the run
                log.exception("alert for account %s could not be delivered", alert.account)
            finally:
                self._queue.task_done()

    async def _deliver(self, alert: Alert) -> None:
        log.warning("alert: %s", alert.text)
        body = alert.body()
        url = self.webhook_for(alert.account)
        if url:
            await self._post(url, body)
        if self.command:
            await self._run_command(alert, body)

    async def _post(self, url: str, body: dict[str, str]) -> None:
        assert self._http is not None
        try:
            async for attempt in retrying(self.attempts, deadline=60.0):
                with attempt:
                    resp = await self._http.post(url, json=body)
                    resp.raise_for_status()
            self.sent += 1
        except httpx.HTTPError as exc:
            self.failed += 1
            status = exc.response.status_code if isinstance(exc, httpx.HTTPStatusError) else type(exc).__name__
            # Only the host: a webhook's path and query often hold its key (Teams puts a signature in the path).
            log.error("alert webhook on %s failed (%s) after retries; the alert for account %s was not delivered",
                      urlsplit(url).netloc, status, body["account"])

    async def _run_command(self, alert: Alert, body: dict[str, str]) -> None:
        assert self.command is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith(_SECRET_ENV)}
        env.update({"PRESENCE_SYNC_ACCOUNT": alert.account, "PRESENCE_SYNC_KIND": alert.kind,
                    "PRESENCE_SYNC_STATE": alert.state, "PRESENCE_SYNC_MESSAGE": alert.message,
                    "PRESENCE_SYNC_ACTION": alert.action, "PRESENCE_SYNC_SINCE": alert.since})
        try:
            proc = await asyncio.create_subprocess_exec(*self.command, stdin=asyncio.subprocess.PIPE,
                                                        stdout=asyncio.subprocess.DEVNULL,
                                                        stderr=asyncio.subprocess.DEVNULL, env=env)
        except OSError as exc:
            log.error("--on-needs-human %s cannot be started: %s", self.command[0], exc.strerror or exc)
            return
        try:
            await asyncio.wait_for(proc.communicate(json.dumps(body).encode()), self.command_timeout)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            log.error("--on-needs-human %s was stopped after %.0f s", self.command[0], self.command_timeout)
            return
        if proc.returncode:
            log.error("--on-needs-human %s exited with %s for the alert on account %s", self.command[0],
                      proc.returncode, alert.account)

    async def aclose(self, timeout: float = 10.0) -> None:
        """Send what is queued (up to ``timeout`` seconds), then stop."""
        if self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._http is not None:
            await self._http.aclose()
