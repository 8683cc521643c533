"""HTTP plumbing shared by every Microsoft endpoint: TLS trust, the one retry policy, request budgets.

- Trust: the system store, plus ``SSL_CERT_FILE`` / ``REQUESTS_CA_BUNDLE`` and an explicit CA bundle.
  Verification is never switched off; a local CA is trusted by adding it, not by disabling checks.
- Retries: only transient failures (429, 5xx, timeouts, resets) are retried, honouring a fractional
  ``Retry-After`` and falling back to jittered exponential backoff (tenacity).
- Budgets: a rolling-window limiter that never lets more than N requests start in any window.
- Observation: every HTTP answer (Graph, SharePoint, token endpoint) is reported to ``note_response``, which
  hands it to the request hook of the current context (the job's metrics), labelled with the current account.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import os
import random
import re
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, stop_before_delay

from .errors import TransientGraphError
from .version import package_version

__all__ = [
    "Pacer",
    "RequestBudget",
    "TrustConfig",
    "CURRENT_ACCOUNT",
    "REQUEST_HOOK",
    "is_transient",
    "note_response",
    "parse_retry_after",
    "retrying",
    "sanitize_url",
]

log = logging.getLogger(__name__)

# Microsoft's throttling guidance: NONISV|CompanyName|AppName/Version, so the tenant's logs name this job.
USER_AGENT = f"NONISV|presence-sync|presence-sync/{package_version()}"

# Set by the job when metrics are on: (account, url, status) for every HTTP answer; status 0 = no answer.
# Context variables reach every task and worker thread (asyncio.to_thread) started under them.
REQUEST_HOOK: ContextVar[Callable[[str, str, int], None] | None] = ContextVar("presence_sync_request_hook",
                                                                              default=None)
CURRENT_ACCOUNT: ContextVar[str] = ContextVar("presence_sync_account", default="")


def note_response(url: str | httpx.URL, status: int, account: str | None = None) -> None:
    """Report one HTTP answer to the request hook, if any (a context-variable lookup when there is none)."""
    hook = REQUEST_HOOK.get()
    if hook is not None:
        hook(account or CURRENT_ACCOUNT.get(), str(url), status)


@dataclass(frozen=True)
class TrustConfig:
    """Which CAs to trust: the system store plus env bundles plus an explicit bundle."""

    ca_bundle: Path | None = None

    def extra_bundles(self) -> list[Path]:
        out: list[Path] = []
        for cand in (self.ca_bundle, os.environ.get("SSL_CERT_FILE"), os.environ.get("REQUESTS_CA_BUNDLE")):
            if cand and Path(cand).is_file() and Path(cand) not in out:
                out.append(Path(cand))
        return out

    def ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        for bundle in self.extra_bundles():
            ctx.load_verify_locations(cafile=str(bundle))
        return ctx

    def bundle_file(self, state_dir: Path) -> Path:
        """One PEM file with every trusted CA, for requests-based clients (office365) that take a path."""
        parts: list[bytes] = []
        system = ssl.get_default_verify_paths().cafile
        for p in [Path(system)] if system and Path(system).is_file() else []:
            parts.append(p.read_bytes())
        if not parts:
            import certifi

            parts.append(Path(certifi.where()).read_bytes())
        for bundle in self.extra_bundles():
            parts.append(bundle.read_bytes())
        data = b"\n".join(parts)
        state_dir.mkdir(parents=True, exist_ok=True)
        target = state_dir / "ca-bundle.pem"
        if not target.exists() or target.read_bytes() != data:
            tmp = target.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
        return target


_SECRET_PARAMS = re.compile(r"(?i)([?&](?:\$skiptoken|\$deltatoken|code|client_secret|password|access_token|sig)=)[^&]+")


def sanitize_url(url: str | httpx.URL) -> str:
    """The URL with secrets and opaque paging tokens masked, for logs and messages."""
    return _SECRET_PARAMS.sub(r"\1***", str(url))


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds (possibly fractional) or an HTTP-date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


TRANSIENT_STATUS = frozenset({429, 500, 502, 503, 504})


def is_transient(exc: BaseException) -> bool:
    """The one predicate: what is worth retrying."""
    if isinstance(exc, TransientGraphError):
        return True
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code in TRANSIENT_STATUS
    return isinstance(exc, (httpx.TransportError, httpx.DecodingError))


BACKOFF = 0.25  # seconds before the first retry of a failure without Retry-After (plus up to twice that, jitter)
FAST_FIRST = 0.05  # under a deadline, the first such retry goes within this many seconds


class _WaitRetryAfter:
    """Wait what the server asked for (Retry-After), else jittered exponential backoff from ``base`` seconds;
    with ``fast_first`` the first retry goes at once (up to FAST_FIRST of jitter) and the backoff starts after it."""

    def __init__(self, cap: float = 60.0, base: float = BACKOFF, fast_first: bool = False) -> None:
        self.cap = cap
        self.base = base
        self.fast_first = fast_first

    def __call__(self, rs: RetryCallState) -> float:
        exc = rs.outcome.exception() if rs.outcome else None
        ra = getattr(exc, "retry_after", None)
        if ra is None and isinstance(exc, httpx.HTTPStatusError):
            ra = parse_retry_after(exc.response.headers.get("Retry-After"))
        if ra is not None:
            # Round up to the millisecond so we never come back a hair too early.
            return min(self.cap, math.ceil(ra * 1000) / 1000 + 0.01)
        step = rs.attempt_number - (2 if self.fast_first else 1)
        if step < 0:
            return random.uniform(0.0, FAST_FIRST)
        return min(8.0, self.base * 2 ** step + random.uniform(0.0, 2 * self.base))


def retrying(attempts: int = 6, deadline: float | None = None,
             sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> AsyncRetrying:
    """The retry policy: transient errors only, Retry-After honoured, bounded by attempts and time: no wait starts
    that would end past ``deadline`` seconds from the first attempt (the caller gets the last error at once
    instead of a retry that comes too late to be of use).

    A failure without Retry-After (a reset, a cut-off body, a bare 5xx) is retried after BACKOFF seconds plus
    jitter, doubling each time. Under a deadline (a presence tick: the answer is only worth having before the
    next tick) the first such retry goes at once, with up to FAST_FIRST of jitter, and the backoff then starts
    from an eighth of the deadline (at most BACKOFF): one reset right after a Retry-After pause then costs
    milliseconds, not a quarter of a second or more."""
    stop: Any = stop_after_attempt(attempts)
    wait = _WaitRetryAfter()
    if deadline is not None:
        stop = stop | stop_before_delay(deadline)
        wait = _WaitRetryAfter(base=min(BACKOFF, deadline / 8), fast_first=True)
    return AsyncRetrying(retry=retry_if_exception(is_transient), wait=wait, stop=stop, reraise=True, sleep=sleep)


class Pacer(Protocol):
    """What a request waits on before it starts, and what a 429's Retry-After holds back. ``acquire`` returns a
    ticket that goes back to ``settle`` with the outcome: throttled (True), answered (False) or no answer (None)."""

    async def acquire(self) -> Any: ...

    def pause(self, seconds: float, throttled: bool = True) -> None: ...

    def settle(self, ticket: Any, throttled: bool | None) -> None: ...


class RequestBudget:
    """At most ``limit`` request starts in any rolling ``window`` seconds, shared by every task of an app and tenant.

    ``headroom`` keeps the pace a little under the service's limit (1,500 per 30 s for presence becomes 1,450),
    so clock skew and another process of the same app don't tip us over. A 429 pauses the budget for its
    Retry-After; when we were starting at least half the pace, it also means someone else draws on the same
    limit, and the pace drops by a fifth, won back by a tenth per quiet window. ``waited`` and ``reason`` say why callers had to wait (the cycle log shows them).
    """

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, headroom: float = 0.0) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a request budget needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self.pace = max(1, int(limit * (1 - headroom)))  # the most we start per window
        self._ceiling = self.pace
        self._clock = clock
        self._sleep = sleep
        self._starts: deque[float] = deque()
        self._paused_until = 0.0
        self._last_429 = -math.inf
        self._lock = asyncio.Lock()
        self.waited = 0.0  # seconds callers spent waiting, all told
        self.retry_after = 0.0  # seconds of Retry-After pauses, all told (overlapping pauses counted once)
        self.reason = ""

    def pause(self, seconds: float, throttled: bool = True) -> None:
        """A 429 (``throttled``) or a busy 503 with Retry-After: nobody starts before it has elapsed; after a
        429 the pace may drop too (below)."""
        now = self._clock()
        self.retry_after += max(0.0, now + seconds - max(self._paused_until, now))
        self._paused_until = max(self._paused_until, now + seconds)
        if not throttled:
            self.reason = f"Graph answered 503 (busy): paused {seconds:.2f}s"
            return
        while self._starts and self._starts[0] <= now - self.window:
            self._starts.popleft()
        # One back-off per wave of 429s, not per throttled request; and only when our own pace is near the limit:
        # a 429 while we start a handful of requests a window comes from someone else, and slowing down would
        # only starve our ticks (repeated waves once drove the pace to 4 per 30 s).
        ours = len(self._starts) * 2 >= self.pace
        if now - self._last_429 > seconds and ours:
            self.pace = max(1, int(self.pace * 0.8))
        self._last_429 = now
        whose = ("we were near the limit" if ours else
                 "not our own pace: another client of this app and tenant, or the service itself")
        self.reason = (f"Graph answered 429 ({whose}): paused {seconds:.2f}s, pace now {self.pace} per "
                       f"{self.window:g}s")

    def _recover(self, now: float) -> None:
        if self.pace < self._ceiling and now - self._last_429 >= self.window:
            self.pace = min(self._ceiling, self.pace + max(1, self._ceiling // 10))
            self._last_429 = now - self.window / 2  # the next step up comes half a window later

    def settle(self, ticket: Any, throttled: bool | None) -> None:
        """Nothing to do: the pace already reacts to 429s through ``pause``."""

    async def acquire(self) -> None:
        async with self._lock:
            first = None
            while True:
                now = self._clock()
                first = now if first is None else first
                self._recover(now)
                while self._starts and self._starts[0] <= now - self.window:
                    self._starts.popleft()
                wait = self._paused_until - now
                if len(self._starts) >= self.pace:
                    wait = max(wait, self._starts[len(self._starts) - self.pace] + self.window - now)
                    if wait > 0 and now >= self._paused_until:
                        self.reason = f"{self.pace} requests per {self.window:g}s reached"
                if wait <= 0:
                    self._starts.append(now)
                    self.waited += now - first
                    return
                await self._sleep(wait + 0.001)


def new_async_client(trust: TrustConfig, base_url: str = "", timeout: float = 30.0,
                     max_connections: int = 16, transport: Any = None) -> httpx.AsyncClient:
    """The httpx client every Graph call goes through (HTTP/2 where the server offers it)."""
    return httpx.AsyncClient(
        base_url=base_url,
        verify=trust.ssl_context(),
        http2=True,
        timeout=httpx.Timeout(timeout, connect=10.0),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        headers={"User-Agent": USER_AGENT},
        transport=transport,
        trust_env=False,
    )
