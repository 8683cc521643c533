"""SharePoint's resource-unit quota: costs per call, rolling minute, RateLimit-* headers, per-part charges."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator

import httpx
import pytest

from sync.emulator.model.tenant import SpList
from sync.emulator.server import EmulatorServer
from sync.emulator.sharepoint.quota import ResourceUnits, format_retry_after

from .test_sharepoint_batch import lf_batch

CONTOSO = "6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"
VERBOSE = "application/json;odata=verbose"
API = "/sites/contoso-agents/_api"


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_rolling_minute_and_retry_after_until_enough_units_return() -> None:
    clock = FakeClock()
    q = ResourceUnits(10, now=clock)
    assert q.charge("app", "t", 2).allowed  # t=1000: 2
    clock.t += 10
    assert q.charge("app", "t", 5).allowed and not q.charge("app", "t", 0).headers  # 7 of 10: below 80%
    clock.t += 10
    ok = q.charge("app", "t", 1)  # 8 of 10: headers from 80% on
    assert ok.allowed and ok.headers == {"RateLimit-Limit": "10", "RateLimit-Remaining": "2",
                                         "RateLimit-Reset": "40"}
    refused = q.charge("app", "t", 4)  # needs 2 more back: the first charge (2 RU) leaves at t=1060
    assert not refused.allowed and refused.retry_after == pytest.approx(40.0)
    assert refused.headers["RateLimit-Remaining"] == "2" and not refused.violation
    clock.t += 1
    assert q.charge("app", "t", 1).violation  # came back before its Retry-After
    clock.t = 1060.001
    assert q.charge("app", "t", 4).allowed
    assert q.used == {"t": 12} and q.peak == {"t": 10}
    assert q.charge("other-app", "t", 10).allowed  # budgets are per (app, tenant)


def test_retry_after_is_rounded_up_to_the_millisecond() -> None:
    assert format_retry_after(40.0) == "40"
    assert format_retry_after(0.2501) == "0.251"
    assert format_retry_after(0.0) == "0.001"


@pytest.fixture()
def tight(limits: EmulatorServer) -> Iterator[EmulatorServer]:
    """The limits fixture plus a scratch list ``Quota`` on contoso's site."""
    site = limits.state.world.tenants[CONTOSO].site
    lst = SpList(id=str(uuid.uuid4()), title="Quota", columns=["Title", "Team"])
    for i in range(1, 4):
        lst.add({"Title": f"Agent {i}", "Team": "Red"})
    site.lists[lst.title.lower()] = lst
    yield limits
    site.lists.pop(lst.title.lower(), None)


def _sp_token(emulator: EmulatorServer) -> str:
    return emulator.state.tokens.issue_access(
        tenant_id=CONTOSO, client_id=f"ru-{uuid.uuid4()}", permissions={"Sites.ReadWrite.All"},
        audience=emulator.base_url, user_upn="svc-presence@contoso.com").token


def test_rest_costs_headers_429_and_stats(http: httpx.Client, tight: EmulatorServer) -> None:
    st = tight.state
    st.limits.sharepoint_ru_per_minute = 10
    st.apply_limits()
    auth = {"Authorization": f"Bearer {_sp_token(tight)}", "Accept": VERBOSE}
    items = f"{API}/web/lists/GetByTitle('Agents')/items"
    before = http.get("/_emulator/stats").json()["sharepoint_ru_used"].get("contoso", 0)
    for _ in range(3):  # a page of items: 2 RU each
        r = http.get(items, params={"$top": "5"}, headers=auth)
        assert r.status_code == 200 and "RateLimit-Limit" not in r.headers
    one = http.get(f"{items}(1)", headers=auth)  # one item: 1 RU -> 7
    assert one.status_code == 200 and "RateLimit-Limit" not in one.headers
    ctx = http.post(f"{API}/contextinfo", headers=auth)  # 1 RU -> 8 = 80%
    assert ctx.status_code == 200 and ctx.headers["RateLimit-Limit"] == "10"
    assert ctx.headers["RateLimit-Remaining"] == "2" and int(ctx.headers["RateLimit-Reset"]) >= 1
    lists = http.get(f"{API}/web/lists", headers=auth)  # list metadata: 2 RU -> 10
    assert lists.status_code == 200 and lists.headers["RateLimit-Remaining"] == "0"
    refused = http.get(f"{items}(1)", headers=auth)
    assert refused.status_code == 429
    assert 50 < float(refused.headers["Retry-After"]) <= 60
    assert re.fullmatch(r"\d+(\.\d{1,3})?", refused.headers["Retry-After"])
    stats = http.get("/_emulator/stats").json()
    assert stats["sharepoint_ru_used"]["contoso"] - before == 10
    assert stats["sharepoint_ru_peak_minute"]["contoso"] >= 10
    assert http.get("/_emulator/limits").json()["sharepoint_ru_per_minute"] == 10


def test_sharepoint_batch_parts_are_charged_one_by_one(http: httpx.Client, tight: EmulatorServer) -> None:
    st = tight.state
    st.limits.sharepoint_ru_per_minute = 4  # two MERGEs (2 RU each) fit, the GET after them does not
    st.apply_limits()
    lst = st.world.tenants[CONTOSO].site.list_by_title("Quota")
    assert lst is not None
    tok = _sp_token(tight)
    boundary, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4().hex[:8]}"
    r = http.post(f"{API}/$batch", content=lf_batch(boundary, changeset, tight.base_url, lst, tok),
                  headers={"Authorization": f"Bearer {tok}", "Content-Type": f"multipart/mixed; boundary={boundary}"})
    assert r.status_code == 200, r.text
    statuses = [int(x) for x in re.findall(rb"HTTP/1\.1 (\d{3}) ", r.content)]
    assert statuses == [204, 412, 429]
    assert b"Retry-After: " in r.content.split(b"HTTP/1.1 429")[1]
    assert r.headers["RateLimit-Remaining"] == "0"


def test_graph_batch_list_items_are_charged_one_by_one(http: httpx.Client, tight: EmulatorServer) -> None:
    st = tight.state
    st.limits.sharepoint_ru_per_minute = 3
    st.apply_limits()
    tenant = st.world.tenants[CONTOSO]
    tok = st.tokens.issue_access(tenant_id=CONTOSO, client_id=f"ru-{uuid.uuid4()}", audience=tight.base_url,
                                 permissions={"Sites.ReadWrite.All"}, via_secret=True).token
    base = f"/sites/{tenant.site.hostname}:{tenant.site.path}:/lists/Quota/items"
    reqs = [{"id": str(n), "method": "PATCH", "url": f"{base}/1/fields",
             "headers": {"Content-Type": "application/json"}, "body": {"Title": f"t{n}"}} for n in (1, 2)]
    r = http.post("/v1.0/$batch", json={"requests": reqs}, headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code == 200, r.text
    got = {x["id"]: x for x in r.json()["responses"]}
    assert got["1"]["status"] == 200
    assert got["2"]["status"] == 429 and float(got["2"]["headers"]["Retry-After"]) > 50
    assert got["2"]["body"]["error"]["code"] == "TooManyRequests"


def test_early_comebacks_are_judged_by_when_the_request_came_in() -> None:
    """A request already on its way when the 429 went out is refused but is no violation; one that came in after
    the 429 and before its Retry-After ended is, even when it is served after the pause."""
    clock = FakeClock()
    q = ResourceUnits(10, now=clock)
    assert q.charge("app", "t", 10).allowed
    clock.t += 1
    refused = q.charge("app", "t", 1)  # the 429 goes out at t=1001, Retry-After 59 s
    assert not refused.allowed and refused.early is None
    clock.t += 0.5
    in_flight = q.charge("app", "t", 1, arrived=1000.9)  # came in 0.1 s before that 429
    assert not in_flight.allowed and not in_flight.violation and in_flight.early is None
    early = q.charge("app", "t", 1, arrived=1001.2)
    assert early.violation and early.early == (1001.2, 1001.0, pytest.approx(1060.0))
    clock.t = 1061.0
    served_late = q.charge("app", "t", 1, arrived=1059.0)  # sent early, served after the pause: still early
    assert served_late.allowed and served_late.violation


def test_graph_budgets_judge_early_comebacks_by_arrival() -> None:
    from sync.emulator.graph.throttle import Budget, Throttle

    clock = FakeClock()
    th = Throttle({"presence": Budget(limit=100, window=30.0)}, now=clock)
    th.force("presence", "app", "t", 2.0)  # an injected 429 at t=1000, Retry-After 2 s
    clock.t += 0.3
    was_on_its_way = th.check("presence", "app", "t", arrived=999.9)
    assert not was_on_its_way.allowed and not was_on_its_way.violation
    came_back_early = th.check("presence", "app", "t", arrived=1000.2)
    assert not came_back_early.allowed and came_back_early.early == (1000.2, 1000.0, pytest.approx(1002.0, abs=0.002))
    clock.t = 1002.01
    assert th.check("presence", "app", "t").allowed
    assert th.check("directory", "app", "t").allowed  # no budget for that bucket here: never throttled


def test_a_request_within_moments_of_the_429_was_on_its_way_and_persistent_early_ones_are_caught() -> None:
    from sync.emulator.model.pause import IN_FLIGHT, RetryAfterHold

    held = RetryAfterHold()
    held.hold(10.0, 11.0)  # a 429 at t=10 with Retry-After 1 s
    assert held.early(10.0 + IN_FLIGHT / 2) is None  # sent alongside the throttled one: it could not have known
    held.hold(10.01, 11.01)  # it got a 429 too: the pause keeps the time of the first
    assert held.early(10.03) == (10.03, 10.0, 11.01)  # a client that keeps coming back is caught
    assert held.early(11.02) is None
