"""Two baselines for the job's presence cycle, measured in this process against the same local tenant.

- ``run_bare_httpx``: the floor. One ``httpx.AsyncClient``, POST ``/v1.0/communications/getPresencesByUserId``
  with 650 ids per call, the calls one after another, ``json`` parsing, nothing else.
- ``run_msgraph_sdk``: the official msgraph-sdk used as its documentation shows: a ``GraphServiceClient`` (default
  middleware: retry, redirect, headers...) and ``client.communications.get_presences_by_user_id.post(...)`` per
  chunk of 650, one after another.

Both run on a drift-free schedule (cycle k starts at ``start + k * interval``; a cycle that overruns skips the
slots it missed) for ``seconds`` and at least ``min_cycles`` cycles. Per cycle they record the CPU seconds of
this whole process (``getrusage(RUSAGE_SELF)``, user + system, all threads), the wall seconds, the presence
requests that reached the wire (retries included) and the 429s among them. Setting up (token, client) is not
measured. Run them when nothing else works in this process, or its CPU is counted too.
"""

from __future__ import annotations

import asyncio
import json
import math
import resource
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import httpx

from .numbers import median, percentile
from .tenant import TenantProcess

__all__ = ["CHUNK", "PRESENCE_PATH", "BaselineResult", "MsgraphSdkMissing", "fetch_user_ids",
           "msgraph_sdk_available", "process_cpu", "run_bare_httpx", "run_msgraph_sdk"]

CHUNK = 650  # ids per getPresencesByUserId, Graph's maximum
PRESENCE_PATH = "/v1.0/communications/getPresencesByUserId"
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


class MsgraphSdkMissing(RuntimeError):
    """The msgraph-sdk baseline needs the ``msgraph`` package."""


def process_cpu() -> float:
    """User + system CPU seconds of this process so far (all threads)."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


@dataclass
class BaselineResult:
    """Per-cycle measurements of one baseline; the lists are index-aligned, one entry per cycle."""

    name: str
    ids: int = 0
    interval: float = 1.0
    cpu_per_cycle: list[float] = field(default_factory=list)
    wall_per_cycle: list[float] = field(default_factory=list)
    calls_per_cycle: list[int] = field(default_factory=list)
    throttled: list[int] = field(default_factory=list)  # 429s seen on the wire, per cycle
    errors: list[int] = field(default_factory=list)  # presence calls that failed otherwise, per cycle
    presences_per_cycle: list[int] = field(default_factory=list)  # presence objects parsed, per cycle
    skipped_slots: int = 0  # schedule slots lost to cycles longer than the interval
    chunks: int = 0  # presence calls a full cycle makes (ceil(ids / 650))
    sampled_chunks: int | None = None  # set when each cycle made only this many calls and was scaled up

    @property
    def extrapolated(self) -> bool:
        return self.sampled_chunks is not None

    @property
    def cycles(self) -> int:
        return len(self.cpu_per_cycle)

    @property
    def cpu_median(self) -> float | None:
        return median(self.cpu_per_cycle)

    @property
    def cpu_p95(self) -> float | None:
        return percentile(self.cpu_per_cycle, 95)

    @property
    def wall_median(self) -> float | None:
        return median(self.wall_per_cycle)

    @property
    def wall_p95(self) -> float | None:
        return percentile(self.wall_per_cycle, 95)

    @property
    def calls_median(self) -> float | None:
        return median(self.calls_per_cycle)

    @property
    def throttled_total(self) -> int:
        return sum(self.throttled)

    @property
    def errors_total(self) -> int:
        return sum(self.errors)

    def figures(self) -> dict[str, Any]:
        """This baseline's section of the report's figures (``report.py``: ``bare_httpx`` / ``msgraph_sdk``)."""
        return {
            "cycle_wall_p50": self.wall_median,
            "cycle_wall_p95": self.wall_p95,
            "cpu_per_cycle_median": self.cpu_median,
            "cpu_per_cycle_p95": self.cpu_p95,
            "presence_calls_per_cycle": self.calls_median,
            "throttled": self.throttled_total,
            "errors": self.errors_total,
            "cycles": self.cycles,
            "ids": self.ids,
            "sampled_chunks": self.sampled_chunks,
        }


@dataclass
class _WireCounts:
    calls: int = 0
    throttled: int = 0


class _CountingTransport(httpx.AsyncHTTPTransport):
    """Counts presence requests on the wire and their 429s (below any retry middleware)."""

    def __init__(self, counts: _WireCounts, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.counts = counts

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await super().handle_async_request(request)
        if request.url.path.endswith("/getPresencesByUserId"):
            self.counts.calls += 1
            if response.status_code == 429:
                self.counts.throttled += 1
        return response


def _chunks(ids: list[str], size: int = CHUNK) -> list[list[str]]:
    return [ids[i:i + size] for i in range(0, len(ids), size)]


def _token_request(tenant: TenantProcess, tenant_name: str) -> tuple[str, dict[str, str]]:
    t, app = tenant.tenant(tenant_name), tenant.confidential_app(tenant_name)
    return (f"{tenant.base_url}/{t['tenant_id']}/oauth2/v2.0/token",
            {"grant_type": "client_credentials", "client_id": app["client_id"],
             "client_secret": app["client_secret"], "scope": GRAPH_SCOPE})


def _token_from(r: httpx.Response) -> str:
    if r.status_code != 200:
        raise RuntimeError(f"client-credentials token: HTTP {r.status_code} {r.text[:300]}")
    return str(r.json()["access_token"])


async def _client_credentials(tenant: TenantProcess, tenant_name: str) -> str:
    url, form = _token_request(tenant, tenant_name)
    async with httpx.AsyncClient(verify=tenant.ssl_context(), timeout=60, trust_env=False) as c:
        return _token_from(await c.post(url, data=form))


def fetch_user_ids(tenant: TenantProcess, tenant_name: str, *, licensed: bool | None = None) -> list[str]:
    """Every directory user id of a tenant (GET /v1.0/users, paged, with a client-credentials token)."""
    url, form = _token_request(tenant, tenant_name)
    with httpx.Client(verify=tenant.ssl_context(), timeout=60, trust_env=False) as c:
        headers = {"Authorization": f"Bearer {_token_from(c.post(url, data=form))}"}
        next_url: str | None = f"{tenant.base_url}/v1.0/users?$select=id&$top=999"
        ids: list[str] = []
        while next_url:
            r = c.get(next_url, headers=headers)
            if r.status_code != 200:
                raise RuntimeError(f"GET /v1.0/users: HTTP {r.status_code} {r.text[:300]}")
            page = r.json()
            ids += [str(u["id"]) for u in page.get("value", [])]
            next_url = page.get("@odata.nextLink")
    return ids


async def _schedule(result: BaselineResult, counts: _WireCounts, seconds: float, interval: float,
                    min_cycles: int, max_cycles: int | None,
                    cycle: Callable[[], Awaitable[tuple[int, int, float]]]) -> BaselineResult:
    """Run ``cycle`` on the drift-free schedule and record each one; ``cycle`` returns (presences, errors,
    scale): a sampled cycle's CPU, wall, calls and presences are multiplied by its scale (1.0 for a full one)."""
    if interval <= 0:
        raise ValueError("interval must be positive")
    start = time.monotonic()
    end = start + seconds
    slot = 0
    while max_cycles is None or result.cycles < max_cycles:
        due = start + slot * interval
        if result.cycles >= min_cycles and due >= end:
            break
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        calls0, throttled0 = counts.calls, counts.throttled
        cpu0, t0 = process_cpu(), time.perf_counter()
        presences, errors, scale = await cycle()
        wall, cpu = time.perf_counter() - t0, process_cpu() - cpu0
        result.cpu_per_cycle.append(cpu * scale)
        result.wall_per_cycle.append(wall * scale)
        calls = counts.calls - calls0
        sampled = result.sampled_chunks
        result.calls_per_cycle.append(round(calls * result.chunks / sampled) if sampled else calls)
        result.throttled.append(counts.throttled - throttled0)
        result.errors.append(errors)
        result.presences_per_cycle.append(round(presences * scale))
        next_slot = max(slot + 1, math.ceil((time.monotonic() - start) / interval))
        result.skipped_slots += next_slot - slot - 1
        slot = next_slot
    return result


async def run_bare_httpx(tenant: TenantProcess, tenant_name: str, ids: list[str], seconds: float,
                         interval: float = 1.0, *, min_cycles: int = 2, max_cycles: int | None = None,
                         warmup: bool = True, http2: bool = False) -> BaselineResult:
    """The bare loop: token by client credentials, then per cycle the presence calls one after another.

    ``warmup`` makes one unmeasured call first (TLS handshake, connection), as the job's first cycle is not
    measured either. Runs cycles for ``seconds`` and at least ``min_cycles`` (at most ``max_cycles``).
    """
    if not ids:
        raise ValueError("no ids to ask presence for")
    token = await _client_credentials(tenant, tenant_name)
    counts = _WireCounts()
    chunks = _chunks(ids)
    result = BaselineResult("bare_httpx", ids=len(ids), interval=interval, chunks=len(chunks))
    url = f"{tenant.base_url}{PRESENCE_PATH}"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    transport = _CountingTransport(counts, verify=tenant.ssl_context(), http2=http2)
    async with httpx.AsyncClient(transport=transport, timeout=60, trust_env=False) as client:

        async def call(chunk: list[str]) -> tuple[int, int]:
            r = await client.post(url, headers=headers, content=json.dumps({"ids": chunk}).encode())
            if r.status_code == 200:
                return len(json.loads(r.content)["value"]), 0
            return 0, int(r.status_code != 429)

        async def cycle() -> tuple[int, int, float]:
            presences = errors = 0
            for chunk in chunks:
                p, e = await call(chunk)
                presences, errors = presences + p, errors + e
            return presences, errors, 1.0

        if warmup:
            await call(chunks[0])
        return await _schedule(result, counts, seconds, interval, min_cycles, max_cycles, cycle)


def _import_msgraph() -> SimpleNamespace:
    try:
        from kiota_abstractions.api_error import APIError
        from kiota_abstractions.authentication import (
            AccessTokenProvider,
            AllowedHostsValidator,
            BaseBearerTokenAuthenticationProvider,
        )
        from msgraph import GraphRequestAdapter, GraphServiceClient
        from msgraph.generated.communications.get_presences_by_user_id.get_presences_by_user_id_post_request_body import (  # noqa: E501
            GetPresencesByUserIdPostRequestBody,
        )
        from msgraph_core import GraphClientFactory
    except ImportError as exc:
        raise MsgraphSdkMissing(
            f"the msgraph-sdk baseline needs the official Microsoft Graph SDK ({exc}): pip install msgraph-sdk "
            "(it is in this project's dev extra: pip install -e '.[dev]')") from exc

    return SimpleNamespace(APIError=APIError, AccessTokenProvider=AccessTokenProvider,
                           AllowedHostsValidator=AllowedHostsValidator,
                           BaseBearerTokenAuthenticationProvider=BaseBearerTokenAuthenticationProvider,
                           GraphRequestAdapter=GraphRequestAdapter, GraphServiceClient=GraphServiceClient,
                           Body=GetPresencesByUserIdPostRequestBody, GraphClientFactory=GraphClientFactory)


def msgraph_sdk_available() -> bool:
    try:
        _import_msgraph()
    except MsgraphSdkMissing:
        return False
    return True


async def run_msgraph_sdk(tenant: TenantProcess, tenant_name: str, ids: list[str], seconds: float,
                          interval: float = 1.0, *, min_cycles: int = 2, max_cycles: int | None = None,
                          warmup: bool = True, sample_chunks: int | None = None) -> BaselineResult:
    """The official msgraph-sdk: a GraphServiceClient on the local tenant, one presence call per 650 ids, in turn.

    The SDK is pointed at the tenant as ``tests/emulator/test_msgraph_sdk.py`` does: a ``GraphRequestAdapter``
    whose ``base_url`` is the tenant's ``/v1.0``, an httpx client built by ``GraphClientFactory`` (the default
    middleware: retry, redirect, parameters, headers) over a transport trusting the tenant's CA, and a token
    provider handing it a client-credentials token for the tenant's host (azure-identity cannot be pointed at
    a local authority without more machinery than the benchmark is about).

    The SDK builds a model object per presence, and that costs milliseconds of CPU each (``Entity``'s field
    deserializers re-run about a thousand ``import`` statements per object; msgraph-sdk-python issue #584):
    a full 30,000-id cycle is minutes of CPU. ``sample_chunks=N`` makes each cycle do only N of the calls
    (a different N each cycle, in turn) and scales CPU, wall, calls and presences up to a full cycle;
    ``result.sampled_chunks`` records it. ``warmup`` makes one unmeasured call first: it imports the ~1,000
    model modules the first deserialization needs (seconds).

    Raises ``MsgraphSdkMissing`` without the ``msgraph`` package.
    """
    sdk = _import_msgraph()
    if not ids:
        raise ValueError("no ids to ask presence for")
    if sample_chunks is not None and sample_chunks < 1:
        raise ValueError("sample_chunks must be at least 1")
    token = await _client_credentials(tenant, tenant_name)
    host = httpx.URL(tenant.base_url).host

    class TokenProvider(sdk.AccessTokenProvider):  # type: ignore[name-defined,misc]
        async def get_authorization_token(self, uri: str, additional_authentication_context: Any = None) -> str:
            return token

        def get_allowed_hosts_validator(self) -> Any:
            return sdk.AllowedHostsValidator([host])

    counts = _WireCounts()
    chunks = _chunks(ids)
    per_cycle = len(chunks) if sample_chunks is None else min(sample_chunks, len(chunks))
    result = BaselineResult("msgraph_sdk", ids=len(ids), interval=interval, chunks=len(chunks),
                            sampled_chunks=per_cycle if per_cycle < len(chunks) else None)
    transport = _CountingTransport(counts, verify=tenant.ssl_context())
    # msgraph_core's transport wrapper does not forward aclose(): the pool is closed below by hand.
    http_client = sdk.GraphClientFactory.create_with_default_middleware(
        client=httpx.AsyncClient(transport=transport, timeout=60, trust_env=False))
    adapter = sdk.GraphRequestAdapter(sdk.BaseBearerTokenAuthenticationProvider(TokenProvider()),
                                      client=http_client)
    adapter.base_url = f"{tenant.base_url}/v1.0"
    client = sdk.GraphServiceClient(request_adapter=adapter)

    async def call(chunk: list[str]) -> tuple[int, int]:
        try:
            reply = await client.communications.get_presences_by_user_id.post(sdk.Body(ids=chunk))
        except sdk.APIError as exc:  # a 429 the SDK's retries did not get past is counted as throttled
            return 0, int(getattr(exc, "response_status_code", None) != 429)
        return (len(reply.value or []) if reply is not None else 0), 0

    turn = [0]

    async def cycle() -> tuple[int, int, float]:
        presences = errors = sent = 0
        first = turn[0]
        turn[0] += per_cycle
        for i in range(first, first + per_cycle):
            chunk = chunks[i % len(chunks)]
            p, e = await call(chunk)
            presences, errors, sent = presences + p, errors + e, sent + len(chunk)
        return presences, errors, len(ids) / sent  # the cost is per presence object: scale by ids

    try:
        if warmup:
            await call(chunks[0])
        return await _schedule(result, counts, seconds, interval, min_cycles, max_cycles, cycle)
    finally:
        await transport.aclose()
