"""Write-back through Graph's list route against the local tenant: one attempt per $batch, per-item results,
throttled items handed back with their Retry-After, accepted items never written twice."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import e2e_support as sup
import httpx
import pytest

from sync.emulator.server import EmulatorServer
from sync.graph.client import GraphClient
from sync.graph.lists import GraphListRoster, sort_replies
from sync.models import WriteResult
from sync.quota import ResourceUnitBudget

T = TypeVar("T")


def versions(emulator: EmulatorServer, tenant: str = "contoso") -> dict[int, int]:
    """Each Agent-list item's version: the emulator adds one per accepted update."""
    t = emulator.state.world.resolve_tenant(tenant)
    return {i: item.version for i, item in t.site.list_by_title("Agents").items.items()}


def run_with_roster(emulator: EmulatorServer, tenant_info: dict[str, Any],
                    body: Callable[[GraphListRoster], Awaitable[T]], **kw: Any) -> T:
    """``body(roster)`` with a GraphListRoster for contoso's app-only account (a token the tenant issued)."""
    state = emulator.state
    tenant = state.world.resolve_tenant("contoso")
    token = state.tokens.issue_access(tenant_id=tenant.tenant_id, client_id=sup.CONTOSO_APP,
                                      permissions={"Sites.ReadWrite.All"}, audience=emulator.base_url,
                                      via_secret=True).token
    site_url = next(t["site_url"] for t in tenant_info["tenants"] if t["name"] == "contoso")

    async def tok(force: bool) -> str:
        return token

    async def go() -> T:
        ctx = ssl.create_default_context(cafile=str(emulator.tls.ca_cert))
        async with httpx.AsyncClient(verify=ctx) as http:
            client = GraphClient(account_id="contoso", graph_url=emulator.base_url, token=tok, http=http)
            return await body(GraphListRoster(client, site_url, "Agents", "UPN", **kw))
    return asyncio.run(go())


def updates_for(ids: list[int], tag: str) -> dict[int, dict[str, str]]:
    return {i: {"Availability": f"{tag}-{i}", "Activity": tag} for i in ids}


def assert_landed(emulator: EmulatorServer, updates: Mapping[int, Mapping[str, str]]) -> None:
    items = sup.list_fields(emulator, "contoso")
    wrong = [i for i, v in updates.items() if {k: items[i].get(k) for k in v} != dict(v)]
    assert not wrong, wrong


def test_45_items_are_written_in_3_batches(emulator: EmulatorServer, tenant_info: dict[str, Any],
                                           ctl: httpx.Client) -> None:
    ids = sorted(sup.list_fields(emulator, "contoso"))[:45]
    updates = updates_for(ids, "Busy")
    before = versions(emulator)
    ru = ResourceUnitBudget(1250)

    result = run_with_roster(emulator, tenant_info, lambda r: r.write(updates), ru=ru)

    assert result.done == ids and result.written == 45
    assert result.throttled == {} and result.failed == {} and result.retry_after is None
    assert_landed(emulator, updates)
    after = versions(emulator)
    assert all(after[i] == before[i] + 1 for i in ids)  # each item written exactly once
    requests = ctl.get("/_emulator/stats").json()["requests"]
    assert requests["graph.batch"] == 3 and requests["graph.listitem.update"] == 45
    assert ru.available() == ru.capacity - 2 * 45  # 2 RU per update, counted before each batch


def test_refused_items_are_failed_with_the_reason(emulator: EmulatorServer, tenant_info: dict[str, Any],
                                                  ctl: httpx.Client) -> None:
    first = min(sup.list_fields(emulator, "contoso"))
    result = run_with_roster(emulator, tenant_info, lambda r: r.write({
        first: {"Activity": "InACall"}, 999_999: {"Activity": "InACall"}}))
    assert result.done == [first]
    assert set(result.failed) == {999_999} and "404" in result.failed[999_999]
    assert result.throttled == {}


def test_item_level_429s_come_back_throttled_and_only_they_are_resent(
        emulator: EmulatorServer, tenant_info: dict[str, Any], ctl: httpx.Client,
        limits: Callable[[dict[str, Any]], None]) -> None:
    ids = sorted(sup.list_fields(emulator, "contoso"))[:45]
    before = versions(emulator)

    async def body(roster: GraphListRoster) -> tuple[WriteResult, WriteResult]:
        ctl.post("/_emulator/reset")  # an empty SharePoint budget for this minute
        warm = await roster.write(updates_for(ids[:1], "Warm"))  # resolves the site and list ids
        assert warm.done == ids[:1]
        used = ctl.get("/_emulator/stats").json()["sharepoint_ru_used"]["contoso"]
        limits({"sharepoint_ru_per_minute": used + 25 * 2})  # 25 more item updates (2 RU each) this minute
        first = await roster.write(updates_for(ids, "Away"))
        assert len(first.done) == 25 and len(first.throttled) == 20
        # The caller waits out Retry-After (about a minute here); the tenant's reset stands in for the wait.
        ctl.post("/_emulator/reset")
        again = await roster.write({i: updates_for(ids, "Away")[i] for i in first.throttled})
        return first, again

    first, again = run_with_roster(emulator, tenant_info, body, concurrency=1)
    assert set(first.done).isdisjoint(first.throttled) and not first.failed
    assert first.done == ids[:25]  # one batch at a time: the first 25 PATCHes fit the budget
    assert all(0 < ra <= 60 for ra in first.throttled.values())
    assert first.retry_after == max(first.throttled.values())
    assert again.done == sorted(first.throttled) and not again.throttled and not again.failed
    assert_landed(emulator, updates_for(ids, "Away"))
    after = versions(emulator)
    assert after[ids[0]] == before[ids[0]] + 2  # the warm-up, then "Away"
    assert all(after[i] == before[i] + 1 for i in ids[1:]), "an accepted item was written twice"


def test_a_throttled_envelope_hands_back_its_batch_and_pauses_the_budget(
        emulator: EmulatorServer, tenant_info: dict[str, Any], ctl: httpx.Client) -> None:
    ids = sorted(sup.list_fields(emulator, "contoso"))[:45]
    updates = updates_for(ids, "DoNotDisturb")
    paced: list[float] = []
    fake_now = [0.0]

    async def fake_sleep(seconds: float) -> None:  # the budget's own clock: it records, it does not wait
        paced.append(seconds)
        fake_now[0] += seconds
    ru = ResourceUnitBudget(1250, clock=lambda: fake_now[0], sleep=fake_sleep)

    async def body(roster: GraphListRoster) -> tuple[WriteResult, WriteResult, dict[str, int]]:
        ctl.post("/_emulator/faults", json={"burst_429": 1, "burst_retry_after": 1.25,
                                            "paths": ["/v1.0/$batch"]})
        before_write = versions(emulator)
        first = await roster.write(updates)
        assert first.retry_after is not None
        time.sleep(first.retry_after)  # what the caller does before re-sending the throttled items
        ctl.post("/_emulator/stats/reset")
        again = await roster.write({i: updates[i] for i in first.throttled})
        stats = ctl.get("/_emulator/stats").json()["requests"]
        after = versions(emulator)
        assert all(after[i] == before_write[i] + 1 for i in ids), "an item was written twice or not at all"
        return first, again, stats

    first, again, stats = run_with_roster(emulator, tenant_info, body, ru=ru, concurrency=1)
    assert first.done == ids[20:] and sorted(first.throttled) == ids[:20]  # the first envelope got the 429
    assert set(first.throttled.values()) == {1.25} and first.retry_after == 1.25 and not first.failed
    # The 429's Retry-After paused the RU budget: the next batch waited 1.25 s before it was sent.
    assert paced == [pytest.approx(1.251)]
    assert again.done == ids[:20] and not again.throttled
    assert stats.get("graph.listitem.update") == 20 and stats.get("graph.batch") == 1  # only the throttled
    assert_landed(emulator, updates)


def test_sort_replies_files_each_answer_by_status() -> None:
    replies = {
        "1": {"id": "1", "status": 200, "body": {}},
        "2": {"id": "2", "status": 429, "headers": {"retry-after": "2.128"}},
        "3": {"id": "3", "status": 503, "headers": {}},
        "4": {"id": "4", "status": 412, "body": {"error": {"code": "preconditionFailed", "message": "etag"}}},
        "6": {"id": "6", "status": 204, "body": None},
    }
    out = sort_replies([1, 2, 3, 4, 5, 6], replies)
    assert out.done == [1, 6] and out.written == 2
    assert out.throttled == {2: 2.128, 3: 0.0, 5: 0.0}  # 5 had no answer at all
    assert out.retry_after == 2.128
    assert out.failed == {4: "HTTP 412 preconditionFailed: etag"}
