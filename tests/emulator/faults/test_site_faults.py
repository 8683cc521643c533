"""Faults aimed at one tenant's site: sustained throttling (throttle_for) and token revocation by path."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from sync.emulator.cli import build_parser
from sync.emulator.cli import main as emulator_main
from sync.emulator.faults.layer import FaultConfig
from sync.emulator.model.pause import IN_FLIGHT
from sync.emulator.model.tenant import Tenant
from sync.emulator.server import EmulatorServer

from ..conftest import CONTOSO

CAME_BACK = IN_FLIGHT + 0.02  # seconds: an early retry that comes back after the 429 was read

FABRIKAM = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
ACCOUNTS = {CONTOSO: ("22222222-3333-4444-8555-666666666666", "svc-presence@contoso.com", "Pr3sence-Sync!2026"),
            FABRIKAM: ("44444444-5555-4666-8777-888888888888", "svc-presence@fabrikam.com", "Fabrikam-Svc!2026")}
REST = "/sites/{}-agents/_api/web/lists/GetByTitle('Agents')?$select=Title"


def sp_token(http: httpx.Client, emulator: EmulatorServer, tenant: str) -> dict[str, str]:
    client_id, upn, password = ACCOUNTS[tenant]
    r = http.post(f"/{tenant}/oauth2/v2.0/token", data={
        "client_id": client_id, "grant_type": "password", "username": upn, "password": password,
        "scope": f"{emulator.base_url}/.default"})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}", "Accept": "application/json;odata=nometadata"}


def test_sustained_throttle_hits_one_site_on_both_wires(http: httpx.Client, emulator: EmulatorServer,
                                                         contoso: Tenant, graph: httpx.Client, faults: Any) -> None:
    contoso_sp, fabrikam_sp = sp_token(http, emulator, CONTOSO), sp_token(http, emulator, FABRIKAM)
    auth = {"Authorization": graph.headers["Authorization"]}
    state = faults(throttle_for=600, throttle_retry_after=7, paths=["/sites/contoso-agents"])
    assert state["throttle_remaining"] > 500
    before = http.get("/_emulator/stats").json()

    rest = http.get(REST.format("contoso"), headers=contoso_sp)
    assert rest.status_code == 429 and rest.headers["Retry-After"] == "7"
    assert "SPRequestThrottled" in rest.json()["odata.error"]["code"]  # SharePoint's body on /_api
    time.sleep(CAME_BACK)  # after the client read the 429 (model/pause.py: sooner was still on its way)
    again = http.get(REST.format("contoso"), headers=contoso_sp)  # at once: long before 7 s
    assert again.status_code == 429
    assert http.get(REST.format("fabrikam"), headers=fabrikam_sp).status_code == 200  # another tenant's site

    on_graph = http.get(f"/v1.0/sites/{contoso.site.id}/lists", headers=auth)
    assert on_graph.status_code == 429 and on_graph.json()["error"]["code"] == "TooManyRequests"
    assert http.get("/v1.0/users?$top=1", headers=auth).status_code == 200  # the tenant's other calls run

    after = http.get("/_emulator/stats").json()
    assert after["faults_injected"]["throttle_for"] - before["faults_injected"].get("throttle_for", 0) == 3
    assert after["retry_after_violations"] - before["retry_after_violations"] >= 1

    ended = faults(throttle_for=0, paths=["/sites/contoso-agents"])
    assert ended["throttle_remaining"] == 0
    assert http.get(REST.format("contoso"), headers=contoso_sp).status_code == 200


def test_throttle_window_ends_by_itself(http: httpx.Client, emulator: EmulatorServer, faults: Any) -> None:
    headers = sp_token(http, emulator, CONTOSO)
    faults(throttle_for=0.3, throttle_retry_after=0.3, paths=["/sites/contoso-agents"])
    deadline = time.monotonic() + 0.3
    while time.monotonic() < deadline + 0.05:
        time.sleep(0.05)
    assert http.get(REST.format("contoso"), headers=headers).status_code == 200
    assert http.get("/_emulator/faults").json()["throttle_remaining"] == 0


def test_changing_other_switches_keeps_the_window() -> None:
    cfg = FaultConfig(throttle_for=600)
    time.sleep(0.2)
    later = cfg.merged({"error_rate": 0.1})  # the window keeps its end, it does not start again
    assert abs(later.throttle_remaining() - cfg.throttle_remaining()) < 0.1 < 600 - later.throttle_remaining()
    assert cfg.merged({"throttle_for": 0}).throttle_remaining() == 0
    with pytest.raises(ValueError):
        FaultConfig(throttle_for=-1)


def test_revocation_scoped_to_a_site_leaves_other_tenants_alone(http: httpx.Client, emulator: EmulatorServer,
                                                               faults: Any) -> None:
    contoso_sp, fabrikam_sp = sp_token(http, emulator, CONTOSO), sp_token(http, emulator, FABRIKAM)
    faults(paths=["/sites/fabrikam-agents"], revoke_tokens=True)
    assert http.get(REST.format("fabrikam"), headers=fabrikam_sp).status_code == 401
    assert http.get(REST.format("contoso"), headers=contoso_sp).status_code == 200


def test_cli_flags(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["--throttle-for", "30", "--throttle-retry-after", "2",
                                      "--fault-paths", "/sites/contoso-agents"])
    assert (args.throttle_for, args.throttle_retry_after) == (30.0, 2.0)
    assert emulator_main(["--throttle-for", "soon"]) == 2
    assert "--throttle-for: invalid float value: 'soon'" in capsys.readouterr().err


def test_batch_items_for_the_throttled_site_get_429(http: httpx.Client, contoso: Tenant, graph: httpx.Client,
                                                    faults: Any) -> None:
    faults(throttle_for=600, throttle_retry_after=3, paths=["/sites/contoso-agents"])
    r = graph.post("/v1.0/$batch", json={"requests": [
        {"id": "1", "method": "GET", "url": f"/sites/{contoso.site.id}/lists"},
        {"id": "2", "method": "GET", "url": "/users?$top=1"}]})
    assert r.status_code == 200, r.text
    by_id = {x["id"]: x for x in r.json()["responses"]}
    assert by_id["1"]["status"] == 429 and by_id["1"]["headers"]["Retry-After"] == "3"
    assert by_id["2"]["status"] == 200


def test_every_switch_can_aim_at_one_site(http: httpx.Client, emulator: EmulatorServer, faults: Any) -> None:
    contoso_sp, fabrikam_sp = sp_token(http, emulator, CONTOSO), sp_token(http, emulator, FABRIKAM)
    faults(error_rate=1.0, paths=["/sites/fabrikam-agents"], seed=1)
    assert http.get(REST.format("fabrikam"), headers=fabrikam_sp).status_code in (500, 502, 503, 504)
    assert http.get(REST.format("contoso"), headers=contoso_sp).status_code == 200

    faults(latency="fixed:250", paths=["/sites/fabrikam-agents"])  # slow SharePoint for one tenant
    before = http.get("/_emulator/stats").json()["faults_injected"].get("latency", 0)
    start = time.perf_counter()
    assert http.get(REST.format("fabrikam"), headers=fabrikam_sp).status_code == 200
    assert time.perf_counter() - start >= 0.25
    assert http.get(REST.format("contoso"), headers=contoso_sp).status_code == 200
    assert http.get("/_emulator/stats").json()["faults_injected"]["latency"] - before == 1  # only fabrikam's

    faults(truncate_rate=1.0, paths=["/sites/fabrikam-agents"])
    cut = http.get(REST.format("fabrikam"), headers=fabrikam_sp)
    with pytest.raises(ValueError):
        cut.json()
    assert http.get(REST.format("contoso"), headers=contoso_sp).json()["Title"] == "Agents"


def test_bare_sites_prefix_still_means_sharepoint_rest_only(http: httpx.Client, contoso: Tenant,
                                                            graph: httpx.Client, faults: Any) -> None:
    faults(error_rate=1.0, paths=["/sites"])
    assert graph.get(f"/v1.0/sites/{contoso.site.id}/lists").status_code == 200
    faults(error_rate=1.0, paths=["/sites/contoso-agents"])
    assert graph.get(f"/v1.0/sites/{contoso.site.id}/lists").status_code >= 500
