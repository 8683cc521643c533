"""Graph presence over loopback TLS with httpx: getPresencesByUserId limits and shapes, single reads, throttling."""

from __future__ import annotations

import asyncio
import ssl
import time
import uuid

import httpx
import pytest

from sync.emulator.model.pause import IN_FLIGHT
from sync.emulator.model.tenant import Tenant
from sync.emulator.server import EmulatorServer

CAME_BACK = IN_FLIGHT + 0.02  # seconds: an early retry that comes back after the 429 was read

CONTOSO = "6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"
APP_ID = "11111111-2222-4333-8444-555555555555"
APP_SECRET = "contoso-app-secret-value"
NO_PRESENCE_APP = ("11111111-2222-4333-8444-555555555557", "contoso-limited-secret")
BULK = "/v1.0/communications/getPresencesByUserId"
PRESENCE_KEYS = {"id", "availability", "activity", "statusMessage", "outOfOfficeSettings", "sequenceNumber"}


def app_token(http: httpx.Client, client_id: str = APP_ID, secret: str = APP_SECRET) -> str:
    r = http.post(f"/{CONTOSO}/oauth2/v2.0/token", data={
        "client_id": client_id, "client_secret": secret, "grant_type": "client_credentials",
        "scope": "https://graph.microsoft.com/.default"})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def licensed_ids(tenant: Tenant) -> list[str]:
    return sorted(u.id for u in tenant.users.values() if u.teams_licensed)


# --- getPresencesByUserId -------------------------------------------------------------------------------

def test_bulk_presence_shape(graph: httpx.Client, contoso: Tenant) -> None:
    ids = licensed_ids(contoso)[:20]
    r = graph.post(BULK, json={"ids": ids})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["@odata.context"].endswith("/v1.0/$metadata#Collection(microsoft.graph.presence)")
    assert sorted(p["id"] for p in body["value"]) == ids
    for p in body["value"]:
        assert PRESENCE_KEYS <= set(p), p
        assert p["availability"][0].isupper() and p["activity"][0].isupper()  # PascalCase values
        assert isinstance(p["outOfOfficeSettings"]["isOutOfOffice"], bool)
        assert isinstance(p["sequenceNumber"], str)


def test_650_ids_pass_and_651_are_400(graph: httpx.Client, contoso: Tenant, emulator: EmulatorServer) -> None:
    known = licensed_ids(contoso)
    ids = known + [str(uuid.uuid4()) for _ in range(650 - len(known))]
    r = graph.post(BULK, json={"ids": ids})
    assert r.status_code == 200
    assert len(r.json()["value"]) == 650
    r = graph.post(BULK, json={"ids": ids + [str(uuid.uuid4())]})
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "BadRequest" and "650" in err["message"]
    assert emulator.state.stats.max_presence_ids >= 651


def test_duplicates_are_answered_once(graph: httpx.Client, contoso: Tenant) -> None:
    a, b = licensed_ids(contoso)[:2]
    r = graph.post(BULK, json={"ids": [a, b, a, a.upper()]})
    assert r.status_code == 200
    assert sorted(p["id"] for p in r.json()["value"]) == sorted([a, b])


def test_unknown_id_is_presence_unknown_or_omitted(graph: httpx.Client, contoso: Tenant,
                                                   limits: EmulatorServer) -> None:
    known = licensed_ids(contoso)[0]
    stranger = str(uuid.uuid4())
    value = graph.post(BULK, json={"ids": [known, stranger]}).json()["value"]
    unknown = next(p for p in value if p["id"] == stranger)
    assert unknown["availability"] == unknown["activity"] == "PresenceUnknown"
    assert PRESENCE_KEYS <= set(unknown)
    limits.state.limits.unknown_presence_ids = "omit"
    value = graph.post(BULK, json={"ids": [known, stranger]}).json()["value"]
    assert [p["id"] for p in value] == [known]


def test_user_without_teams_reads_presence_unknown(graph: httpx.Client, contoso: Tenant) -> None:
    unlicensed = next(u for u in contoso.users.values() if not u.teams_licensed)
    value = graph.post(BULK, json={"ids": [unlicensed.id]}).json()["value"]
    assert [(p["id"], p["availability"], p["activity"]) for p in value] == \
        [(unlicensed.id, "PresenceUnknown", "PresenceUnknown")]


@pytest.mark.parametrize("body", [{}, {"ids": "not-a-list"}, {"ids": ["not-a-guid"]}, {"ids": [42]}, []])
def test_bad_bodies_are_400(graph: httpx.Client, body: object) -> None:
    r = graph.post(BULK, json=body)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "BadRequest"


def test_invalid_json_is_400(graph: httpx.Client) -> None:
    r = graph.post(BULK, content=b"{ids:", headers={"Content-Type": "application/json"})
    assert r.status_code == 400


def test_presence_needs_presence_permission(http: httpx.Client, contoso: Tenant) -> None:
    token = app_token(http, *NO_PRESENCE_APP)
    r = http.post(BULK, json={"ids": licensed_ids(contoso)[:1]}, headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "Authorization_RequestDenied"
    assert http.get("/v1.0/users?$top=1", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_presence_stats_are_counted(graph: httpx.Client, contoso: Tenant, emulator: EmulatorServer) -> None:
    stats = emulator.state.stats
    before = (stats.presence_ids_total, stats.requests["graph.presence.bulk"])
    graph.post(BULK, json={"ids": licensed_ids(contoso)[:7]})
    assert (stats.presence_ids_total, stats.requests["graph.presence.bulk"]) == (before[0] + 7, before[1] + 1)


# --- single reads ---------------------------------------------------------------------------------------

def test_single_user_presence_paths(graph: httpx.Client, contoso: Tenant, emulator: EmulatorServer) -> None:
    uid = licensed_ids(contoso)[0]
    for path in (f"/v1.0/users/{uid}/presence", f"/v1.0/communications/presences/{uid}"):
        r = graph.get(path)
        assert r.status_code == 200, r.text
        assert r.json()["id"] == uid and "value" not in r.json()
    assert graph.get(f"/v1.0/users/{uuid.uuid4()}/presence").status_code == 404
    assert graph.get("/v1.0/me/presence").status_code == 400  # app-only token
    user = contoso.users[uid]
    token = emulator.state.tokens.issue_access(tenant_id=CONTOSO, client_id=APP_ID, permissions={"Presence.Read"},
                                               audience="https://graph.microsoft.com",
                                               user_upn=user.user_principal_name).token
    me = graph.get("/v1.0/me/presence", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200 and me.json()["id"] == uid


# --- throttling -----------------------------------------------------------------------------------------

def test_budget_exhaustion_gives_429_and_early_retry_is_a_violation(graph: httpx.Client, contoso: Tenant,
                                                                    limits: EmulatorServer) -> None:
    state = limits.state
    state.limits.presence_requests = 3
    state.apply_limits()
    body = {"ids": licensed_ids(contoso)[:1]}
    assert [graph.post(BULK, json=body).status_code for _ in range(3)] == [200, 200, 200]
    throttled_before, violations_before = state.stats.throttled, state.stats.retry_after_violations
    r = graph.post(BULK, json=body)
    assert r.status_code == 429
    retry_after = float(r.headers["Retry-After"])
    assert 0 < retry_after <= state.limits.presence_window
    err = r.json()["error"]
    assert err["code"] == "TooManyRequests" and err["innerError"]["status"] == "429"
    assert state.stats.retry_after_violations == violations_before
    time.sleep(CAME_BACK)  # after the client read the 429 (model/pause.py: sooner was still on its way)
    again = graph.post(BULK, json=body)
    assert again.status_code == 429
    assert state.stats.retry_after_violations == violations_before + 1
    assert state.stats.throttled == throttled_before + 2
    # directory calls have their own budget
    assert graph.get("/v1.0/users", params={"$top": "1"}).status_code == 200


def test_1600_real_presence_calls_in_one_window_are_throttled(
        emulator: EmulatorServer, ssl_context: ssl.SSLContext, http: httpx.Client, contoso: Tenant,
        limits: EmulatorServer) -> None:
    token = app_token(http)
    body = {"ids": licensed_ids(contoso)[:1]}
    state = emulator.state

    async def run() -> list[httpx.Response]:
        lim = httpx.Limits(max_connections=16, max_keepalive_connections=16)
        async with httpx.AsyncClient(base_url=emulator.base_url, verify=ssl_context, limits=lim, timeout=30,
                                     headers={"Authorization": f"Bearer {token}"}) as client:
            sem = asyncio.Semaphore(16)

            async def one() -> httpx.Response:
                async with sem:
                    return await client.post(BULK, json=body)

            return await asyncio.gather(*(one() for _ in range(1600)))

    responses = asyncio.run(run())
    codes = [r.status_code for r in responses]
    assert codes.count(200) == state.limits.presence_requests == 1500
    assert codes.count(429) == 100
    retry_afters = [r.headers["Retry-After"] for r in responses if r.status_code == 429]
    assert all(0 < float(v) <= 30 for v in retry_afters)
    assert any("." in v for v in retry_afters)  # fractional, like Graph's "2.128"
    assert state.stats.presence_window_peak >= 1500
