"""The HTTP layer with plain values (injected clock and sleep) and one chunking run against the local tenant."""

from __future__ import annotations

import asyncio
import email.utils
import ssl
import time
import uuid

import httpx
import pytest
from fake_time import FakeTime

from sync.emulator.server import EmulatorServer
from sync.errors import PermanentGraphError, TransientGraphError
from sync.graph.client import GraphClient
from sync.graph.presence import fetch_presences
from sync.http import RequestBudget, TrustConfig, is_transient, parse_retry_after, retrying, sanitize_url


def test_budget_never_exceeds_its_window() -> None:
    t = FakeTime()
    budget = RequestBudget(3, 1.0, clock=t.clock, sleep=t.sleep)
    starts: list[float] = []

    async def go() -> None:
        for _ in range(10):
            await budget.acquire()
            starts.append(t.now)
    asyncio.run(go())
    assert len(starts) == 10
    for s in starts:  # any rolling 1 s window holds at most 3 starts
        assert sum(1 for x in starts if s <= x < s + 1.0) <= 3
    assert starts[-1] - starts[0] >= 3.0  # 10 starts at 3 per second need at least 3 s


def test_pause_holds_every_caller_until_retry_after() -> None:
    t = FakeTime()
    budget = RequestBudget(100, 30.0, clock=t.clock, sleep=t.sleep)
    budget.pause(2.5)
    asyncio.run(budget.acquire())
    assert t.now >= 1002.5


def test_budget_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        RequestBudget(0, 30)


@pytest.mark.parametrize("value,expected", [("2.128", 2.128), ("0", 0.0), ("10", 10.0), ("-3", 0.0),
                                            (None, None), ("", None), ("soon", None)])
def test_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value) == expected


def test_retry_after_http_date() -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    got = parse_retry_after(when)
    assert got is not None and 25 <= got <= 31


def test_only_transient_errors_are_retried() -> None:
    req = httpx.Request("GET", "https://graph.example/v1.0/users")
    assert is_transient(TransientGraphError("429", retry_after=1.0))
    assert is_transient(httpx.ConnectError("refused", request=req))
    assert is_transient(httpx.HTTPStatusError("503", request=req, response=httpx.Response(503, request=req)))
    assert not is_transient(httpx.HTTPStatusError("404", request=req, response=httpx.Response(404, request=req)))
    assert not is_transient(PermanentGraphError("403", status=403))
    assert not is_transient(ValueError("bug"))


def test_retry_policy_waits_what_the_server_asked() -> None:
    t = FakeTime()
    calls = []

    async def go() -> str:
        async for attempt in retrying(5, sleep=t.sleep):
            with attempt:
                calls.append(t.now)
                if len(calls) < 3:
                    raise TransientGraphError("throttled", retry_after=1.25)
                return "ok"
        raise AssertionError
    assert asyncio.run(go()) == "ok"
    assert len(calls) == 3
    assert all(1.25 <= s <= 1.3 for s in t.slept), t.slept  # Retry-After, rounded up, never early


def _backoffs(deadline: float | None) -> list[float]:
    """The waits before the retries of a failure without Retry-After (a reset), under ``deadline``."""
    t = FakeTime()

    async def go() -> None:
        async for attempt in retrying(4, deadline=deadline, sleep=t.sleep):
            with attempt:
                raise TransientGraphError("reset", retry_after=None)
    with pytest.raises(TransientGraphError):
        asyncio.run(go())
    return t.slept


def test_backoff_without_retry_after_doubles_from_a_quarter_second() -> None:
    for _ in range(20):
        first, second, third = _backoffs(None)
        assert 0.25 <= first <= 0.75 and 0.5 <= second <= 1.0 and 1.0 <= third <= 1.5


def test_backoff_under_a_short_deadline_retries_at_once_then_from_an_eighth_of_it() -> None:
    """A presence tick with 0.8 s to go: the first retry within 50 ms, the next after 0.1-0.3 s (not 0.25-0.75 s)."""
    for _ in range(20):
        waits = _backoffs(0.8)  # (the deadline itself: the test below, in real time)
        assert len(waits) >= 2 and 0 <= waits[0] <= 0.05 and 0.1 <= waits[1] <= 0.3, waits
    long = _backoffs(10.0)  # a long deadline: at once, then the usual backoff
    assert long[0] <= 0.05 and 0.25 <= long[1] <= 0.75, long


def test_retry_policy_gives_up_on_permanent_errors_at_once() -> None:
    t = FakeTime()

    async def go() -> None:
        async for attempt in retrying(5, sleep=t.sleep):
            with attempt:
                raise PermanentGraphError("404", status=404)
    with pytest.raises(PermanentGraphError):
        asyncio.run(go())
    assert t.slept == []


def test_sanitize_url_masks_tokens() -> None:
    url = "https://g/v1.0/users/delta?$select=id&$deltatoken=SECRET1&$skiptoken=SECRET2&code=abc"
    clean = sanitize_url(url)
    assert "SECRET1" not in clean and "SECRET2" not in clean and "abc" not in clean
    assert "$select=id" in clean


def test_presence_is_fetched_in_chunks_of_650(emulator: EmulatorServer) -> None:
    """1,301 ids (some unknown, one duplicate) -> 3 calls of at most 650 distinct ids, one answer per id."""
    state = emulator.state
    tenant = next(t for t in state.world.tenants.values() if t.name == "contoso")
    token = state.tokens.issue_access(tenant_id=tenant.tenant_id, client_id="11111111-2222-4333-8444-555555555555",
                                      permissions={"Presence.Read.All"}, audience=emulator.base_url,
                                      via_secret=True).token
    known = sorted(tenant.users)
    ids = known + [str(uuid.uuid4()) for _ in range(1301 - len(known))] + [known[0]]
    state.stats.reset()

    async def tok(force: bool) -> str:
        return token

    async def go() -> None:
        ctx = ssl.create_default_context(cafile=str(emulator.tls.ca_cert))
        async with httpx.AsyncClient(verify=ctx) as http:
            client = GraphClient(account_id="contoso", graph_url=emulator.base_url, token=tok, http=http)
            result = await fetch_presences(client, ids)
            assert not result.failed_ids
            assert set(result.by_id) == {i.lower() for i in ids}
            assert client.counters.requests == 3
    asyncio.run(go())
    assert state.stats.max_presence_ids == 650
    assert state.stats.requests["graph.presence.bulk"] == 3


def test_trust_includes_an_explicit_bundle(emulator: EmulatorServer) -> None:
    ctx = TrustConfig(emulator.tls.ca_cert).ssl_context()
    with httpx.Client(verify=ctx) as c:
        assert c.get(f"{emulator.base_url}/_emulator/info").status_code == 200
    with httpx.Client(verify=ssl.create_default_context(cafile=None)) as c, pytest.raises(httpx.ConnectError):
        c.get(f"{emulator.base_url}/_emulator/info")


def test_a_429_lowers_the_pace_and_quiet_windows_win_it_back() -> None:
    t = FakeTime()
    budget = RequestBudget(1500, 30.0, clock=t.clock, sleep=t.sleep, headroom=1 / 30)
    assert budget.pace == 1450  # paced under Graph's 1,500 per 30 s

    async def busy(n: int) -> None:
        for _ in range(n):
            await budget.acquire()

    asyncio.run(busy(800))  # more than half the pace started in this window: a 429 means the limit is shared
    budget.pause(2.0)
    assert budget.pace == 1160 and "429" in budget.reason
    budget.pause(2.0)  # the same wave of 429s: one back-off, not two
    assert budget.pace == 1160
    asyncio.run(budget.acquire())
    assert t.now >= 1002.0  # nobody starts before the Retry-After has elapsed
    t.now += 31.0  # a quiet window
    asyncio.run(budget.acquire())
    assert budget.pace == 1160 + 145  # a tenth of the ceiling back per quiet window
    for _ in range(4):
        t.now += 16.0
        asyncio.run(budget.acquire())
    assert budget.pace == 1450  # never above the ceiling
    assert budget.waited >= 2.0


def test_429s_while_starting_few_requests_pause_but_never_lower_the_pace() -> None:
    t = FakeTime()
    budget = RequestBudget(1500, 30.0, clock=t.clock, sleep=t.sleep, headroom=1 / 30)
    for _ in range(30):  # a 429 wave every 20 s for 10 minutes, at 3 requests a second
        for _ in range(3):
            asyncio.run(budget.acquire())
        budget.pause(1.5)
        t.now += 20.0
    assert budget.pace == 1450  # the waves came from elsewhere; slowing down would not have helped
    assert budget.retry_after == 45.0


def test_a_busy_503s_retry_after_holds_later_calls_but_never_lowers_the_pace() -> None:
    t = FakeTime()
    budget = RequestBudget(1500, 30.0, clock=t.clock, sleep=t.sleep, headroom=1 / 30)
    for _ in range(1000):  # at two thirds of the pace: a 429 now would lower it
        asyncio.run(budget.acquire())
    budget.pause(1.0, throttled=False)
    assert budget.pace == 1450 and "503" in budget.reason
    before = t.now
    asyncio.run(budget.acquire())
    assert t.now - before >= 1.0  # the next call waited the 503's Retry-After out


def test_a_deadline_never_starts_a_wait_that_would_end_past_it() -> None:
    """With 0.3 s to go, a Retry-After of 0.2 s is waited once; the second would end past the deadline, so the
    caller gets the error at once instead of a retry that comes too late."""
    calls: list[float] = []

    async def go() -> None:
        async for attempt in retrying(5, deadline=0.3):
            with attempt:
                calls.append(time.monotonic())
                raise TransientGraphError("throttled", retry_after=0.2)
    t0 = time.monotonic()
    with pytest.raises(TransientGraphError):
        asyncio.run(go())
    assert len(calls) == 2
    assert calls[1] - calls[0] >= 0.2  # the Retry-After that fitted was honoured in full
    assert time.monotonic() - t0 < 0.3  # and nothing waited past the deadline
