"""Fault injection on Graph paths, switched through POST /_emulator/faults and observed with httpx."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from sync.emulator.faults.layer import FaultConfig, parse_latency
from sync.emulator.model.pause import IN_FLIGHT
from sync.emulator.server import EmulatorServer

CAME_BACK = IN_FLIGHT + 0.02  # seconds: an early retry that comes back after the 429 was read

FABRIKAM = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
FAB_APP = "33333333-4444-4555-8666-777777777777"
PATH = "/v1.0/users"


@pytest.fixture()
def token(http: httpx.Client) -> str:
    r = http.post(f"/{FABRIKAM}/oauth2/v2.0/token", data={
        "client_id": FAB_APP, "client_secret": "fabrikam-app-secret-value", "grant_type": "client_credentials",
        "scope": "https://graph.microsoft.com/.default"})
    return str(r.json()["access_token"])


def get(http: httpx.Client, token: str, path: str = PATH) -> httpx.Response:
    return http.get(path, headers={"Authorization": f"Bearer {token}"})


def test_parse_latency() -> None:
    assert parse_latency(None) is None and parse_latency("none") is None
    assert parse_latency("fixed:50") == ("fixed", 50, 50)
    assert parse_latency("uniform:10,200") == ("uniform", 10, 200)
    assert parse_latency("exp:40") == ("exp", 40, 400)
    for bad in ("fixed", "uniform:5", "uniform:9,1", "exp:0", "gauss:1,2", "fixed:x"):
        with pytest.raises(ValueError):
            parse_latency(bad)


def test_exp_latency_is_capped() -> None:
    cfg = FaultConfig(latency="exp:10", seed=3)
    assert max(cfg.delay() for _ in range(2000)) <= 0.1


def test_burst_429_and_early_retry_is_a_violation(emulator: EmulatorServer, http: httpx.Client, token: str,
                                                  faults: Any) -> None:
    faults(burst_429=2, burst_retry_after=5.25)
    before = http.get("/_emulator/stats").json()
    first = get(http, token)
    assert first.status_code == 429
    assert first.headers["Retry-After"] == "5.250"
    assert first.json()["error"]["code"] == "TooManyRequests"
    assert first.json()["error"]["innerError"]["status"] == "429"
    time.sleep(CAME_BACK)  # after the client read the 429 (model/pause.py: sooner was still on its way)
    early = get(http, token)  # retried at once, long before 5.25 s
    assert early.status_code == 429
    after = http.get("/_emulator/stats").json()
    assert after["throttled"] - before["throttled"] == 2
    assert after["retry_after_violations"] - before["retry_after_violations"] == 1
    assert after["faults_injected"]["burst_429"] - before["faults_injected"].get("burst_429", 0) == 2
    assert http.get("/_emulator/faults").json()["burst_429"] == 0  # the burst is used up
    third = get(http, token)  # the burst is over, but its Retry-After still runs: Graph's budget remembers it
    if third.status_code != 404:  # (404 only while no Graph route serves the path)
        assert third.status_code == 429
        final = http.get("/_emulator/stats").json()
        assert final["retry_after_violations"] - before["retry_after_violations"] == 2


def test_error_rate_is_5xx_and_seeded(http: httpx.Client, token: str, faults: Any) -> None:
    runs = []
    for _ in range(2):
        faults(error_rate=1.0, seed=7)
        answers = [get(http, token) for _ in range(8)]
        runs.append([r.status_code for r in answers])
        for r in answers:
            assert r.status_code in (500, 502, 503, 504)
            assert r.json()["error"]["code"]
            if r.status_code == 503:
                assert r.headers["Retry-After"]
    assert runs[0] == runs[1]
    assert len(set(runs[0])) > 1


def test_latency_fixed(http: httpx.Client, token: str, faults: Any) -> None:
    faults(latency="fixed:150")
    start = time.perf_counter()
    get(http, token)
    assert time.perf_counter() - start >= 0.15
    assert http.get("/_emulator/stats").json()["faults_injected"]["latency"] >= 1


def test_reset_drops_the_connection(http: httpx.Client, token: str, faults: Any) -> None:
    faults(reset_rate=1.0)
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        get(http, token)


def test_truncate_cuts_the_body(http: httpx.Client, token: str, faults: Any) -> None:
    whole = get(http, token).content
    faults(truncate_rate=1.0)
    cut = get(http, token)
    assert len(cut.content) < len(whole) and whole.startswith(cut.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)


def test_malformed_json_with_200(http: httpx.Client, token: str, faults: Any) -> None:
    faults(malformed_rate=1.0)
    r = get(http, token)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    with pytest.raises(json.JSONDecodeError):
        r.json()


def test_revoke_tokens_once(emulator: EmulatorServer, http: httpx.Client, token: str, faults: Any) -> None:
    assert faults(revoke_tokens=True)["revoke_tokens"] is False  # done at once, and only once
    with pytest.raises(Exception, match="revoked"):
        emulator.state.tokens.validate(f"Bearer {token}")
    assert get(http, token).status_code in (401, 404)  # 404 only while no Graph route serves the path


def test_revoke_tokens_every(emulator: EmulatorServer, http: httpx.Client, token: str, faults: Any) -> None:
    faults(revoke_every=0.2)
    assert get(http, token).status_code != 401  # the period has not passed yet
    time.sleep(0.25)
    get(http, token)  # the next matching request after the period revokes everything
    with pytest.raises(Exception, match="revoked"):
        emulator.state.tokens.validate(f"Bearer {token}")


def test_paths_filter_and_control_api_untouched(http: httpx.Client, token: str, faults: Any) -> None:
    faults(error_rate=1.0, paths=["/sites"])
    assert get(http, token).status_code < 500  # /v1.0 not covered now
    assert http.get("/_emulator/info").status_code == 200
    faults(error_rate=1.0, paths=["/"])
    assert http.get("/_emulator/info").status_code == 200  # never /_emulator
    assert http.get("/sites/fabrikam-agents/_api/web").status_code >= 500


def test_an_injected_presence_429_is_logged_as_a_window_without_reads(http: httpx.Client, token: str,
                                                                      faults: Any) -> None:
    """The soak sets aside states that fell inside such a window; a 429 for a used-up budget is not logged."""
    faults(burst_429=1, burst_retry_after=1.5, paths=["/v1.0/communications"])
    http.post("/_emulator/presence-reads/reset")
    t0 = time.time()
    r = http.post("/v1.0/communications/getPresencesByUserId", json={"ids": []},
                  headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 429 and r.headers["Retry-After"] == "1.500"
    pauses = http.get("/_emulator/presence-reads", params={"tenant": "fabrikam"}).json()["retry_after_pauses"]
    assert len(pauses) == 1
    (sent, until), = pauses
    assert t0 - 0.01 <= sent <= time.time() + 0.01 and until - sent == pytest.approx(1.5, abs=0.002)


def test_an_injected_presence_503_with_retry_after_is_logged_as_a_window_too(http: httpx.Client, token: str,
                                                                            faults: Any) -> None:
    faults(error_rate=1.0, seed=11, paths=["/v1.0/communications"])
    http.post("/_emulator/presence-reads/reset")
    statuses = [http.post("/v1.0/communications/getPresencesByUserId", json={"ids": []},
                          headers={"Authorization": f"Bearer {token}"}).status_code for _ in range(12)]
    assert 503 in statuses and set(statuses) <= {500, 502, 503, 504}
    pauses = http.get("/_emulator/presence-reads", params={"tenant": "fabrikam"}).json()["retry_after_pauses"]
    assert len(pauses) == statuses.count(503)  # the 503s say Retry-After: 1; the other 5xx say nothing
    assert all(until - sent == pytest.approx(1.0, abs=0.002) for sent, until in pauses)


def test_a_429_to_a_revoked_token_still_binds_its_app(http: httpx.Client, token: str, faults: Any) -> None:
    """Tokens are revoked, then a burst answers a request that still carries an old one: the 429 is logged as
    a window without reads for that app's tenant, and the app coming back early (with a fresh token) is caught."""
    faults(burst_429=1, burst_retry_after=2.0, paths=["/v1.0/communications"])
    http.post("/_emulator/presence-reads/reset")
    assert http.post("/_emulator/faults", json={"revoke_tokens": True}).status_code == 200
    before = http.get("/_emulator/stats").json()["retry_after_violations"]
    body, stale = {"ids": []}, {"Authorization": f"Bearer {token}"}
    assert http.post("/v1.0/communications/getPresencesByUserId", json=body, headers=stale).status_code == 429
    assert len(http.get("/_emulator/presence-reads", params={"tenant": "fabrikam"}).json()["retry_after_pauses"]) == 1
    fresh = http.post(f"/{FABRIKAM}/oauth2/v2.0/token", data={
        "client_id": FAB_APP, "client_secret": "fabrikam-app-secret-value", "grant_type": "client_credentials",
        "scope": "https://graph.microsoft.com/.default"}).json()["access_token"]
    time.sleep(CAME_BACK)
    early = http.post("/v1.0/communications/getPresencesByUserId", json=body,
                      headers={"Authorization": f"Bearer {fresh}"})
    assert early.status_code == 429  # the app's presence budget is held for the 2 s
    assert http.get("/_emulator/stats").json()["retry_after_violations"] == before + 1
