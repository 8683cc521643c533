"""The control API under /_emulator/, driven with httpx like any script would."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from sync.emulator.control.common import is_loopback
from sync.emulator.server import EmulatorServer

CONTOSO = "6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"
FABRIKAM = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
APP_ID = "11111111-2222-4333-8444-555555555555"
FAB_APP = "33333333-4444-4555-8666-777777777777"


@pytest.fixture()
def restore(http: httpx.Client) -> Iterator[None]:
    """Counters, budgets, faults and clock back to defaults after the test."""
    yield
    assert http.post("/_emulator/reset").status_code == 200


def app_token(http: httpx.Client, tenant: str = FABRIKAM, client_id: str = FAB_APP,
              secret: str = "fabrikam-app-secret-value") -> str:
    """Fabrikam by default: the revoke/expire tests touch only fabrikam's app, so others keep theirs."""
    r = http.post(f"/{tenant}/oauth2/v2.0/token", data={
        "client_id": client_id, "client_secret": secret, "grant_type": "client_credentials",
        "scope": "https://graph.microsoft.com/.default"})
    return str(r.json()["access_token"])


def test_info(emulator: EmulatorServer, http: httpx.Client) -> None:
    info = http.get("/_emulator/info").json()
    assert info["base_url"] == info["authority_host"] == info["graph_url"] == emulator.base_url
    assert info["ca_file"] == str(emulator.tls.ca_cert)
    tenants = {t["name"]: t for t in info["tenants"]}
    contoso = tenants["contoso"]
    assert contoso["tenant_id"] == CONTOSO and contoso["display_name"]
    assert contoso["site_url"] == f"{emulator.base_url}/sites/contoso-agents"
    assert contoso["list_title"] == "Agents" and contoso["upn_column"] == "UPN"
    sales = next(d for d in contoso["domains"] if d["id"] == "contoso-sales.com")
    assert sales["isVerified"] is False
    apps = {a["client_id"]: a for a in contoso["apps"]}
    assert apps[APP_ID]["client_secret"] == "contoso-app-secret-value"
    assert apps[APP_ID]["kind"] == "confidential" and "Presence.Read.All" in apps[APP_ID]["permissions"]
    public = apps["22222222-3333-4444-8555-666666666666"]
    assert public["client_secret"] is None and "Presence.Read.All" in public["permissions"]
    assert apps["22222222-3333-4444-8555-666666666667"]["admin_consented"] is False
    assert apps["11111111-2222-4333-8444-555555555556"]["secret_expired"] is True
    svc = {s["upn"]: s for s in contoso["service_accounts"]}
    assert svc["svc-mfa@contoso.com"]["mfa_required"] is True
    assert svc["svc-presence@contoso.com"]["password"] == "Pr3sence-Sync!2026"
    assert tenants["fabrikam"]["tenant_id"] == FABRIKAM


def test_loopback_only() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("127.5.0.1")
    assert not is_loopback("10.0.0.7") and not is_loopback("192.168.1.2") and not is_loopback(None)


def test_stats_and_reset(http: httpx.Client, restore: None) -> None:
    http.get(f"/{CONTOSO}/v2.0/.well-known/openid-configuration")
    stats = http.get("/_emulator/stats").json()
    assert stats["requests"]["identity.discovery"] >= 1
    for key in ("throttled", "retry_after_violations", "max_presence_ids", "presence_window_peak"):
        assert key in stats
    assert http.post("/_emulator/stats/reset").json()["requests"] == {}
    assert http.get("/_emulator/stats").json()["requests_total"] == 0


def test_faults_read_merge_reset(http: httpx.Client, restore: None) -> None:
    assert http.get("/_emulator/faults").json()["error_rate"] == 0
    r = http.post("/_emulator/faults", json={"error_rate": 0.25, "latency": "uniform:1,2"})
    assert r.status_code == 200 and r.json()["error_rate"] == 0.25
    merged = http.post("/_emulator/faults", json={"burst_429": 0}).json()
    assert merged["latency"] == "uniform:1,2" and merged["paths"] == ["/v1.0", "/sites"]
    assert http.post("/_emulator/faults", json={"error_rate": 2}).status_code == 400
    assert http.post("/_emulator/faults", json={"latency": "soon"}).status_code == 400
    assert http.post("/_emulator/faults", json={"nonsense": 1}).status_code == 400
    cleared = http.post("/_emulator/faults", json={"reset": True}).json()
    assert cleared["error_rate"] == 0 and cleared["latency"] is None


def test_clock(http: httpx.Client, restore: None) -> None:
    frozen = http.post("/_emulator/clock", json={"set": "2026-03-02T09:00:00Z", "freeze": True}).json()
    assert frozen["now"].startswith("2026-03-02T09:00:00") and frozen["frozen"] is True
    later = http.post("/_emulator/clock", json={"advance": 90}).json()
    assert later["now"].startswith("2026-03-02T09:01:30")
    assert http.get("/_emulator/clock").json()["now"] == later["now"]
    running = http.post("/_emulator/clock", json={"freeze": False, "speed": 60}).json()
    assert running["frozen"] is False and running["speed"] == 60
    assert http.post("/_emulator/clock", json={"set": "yesterday"}).status_code == 400


def test_limits(emulator: EmulatorServer, http: httpx.Client) -> None:
    before = http.get("/_emulator/limits").json()
    try:
        r = http.post("/_emulator/limits", json={"token_lifetime": 600, "presence_requests": 5})
        assert r.json()["token_lifetime"] == 600
        assert emulator.state.tokens.lifetime == 600
        assert emulator.state.throttle.budgets["presence"].limit == 5
        assert http.post("/_emulator/limits", json={"no_such_limit": 1}).status_code == 400
        assert http.post("/_emulator/limits", json={"unknown_presence_ids": "maybe"}).status_code == 400
    finally:
        http.post("/_emulator/limits", json=before)
    assert emulator.state.tokens.lifetime == before["token_lifetime"]


def test_presence_log_and_presence(emulator: EmulatorServer, http: httpx.Client) -> None:
    contoso = emulator.state.world.tenants[CONTOSO]
    ids = ",".join(list(contoso.users)[:3])
    now = datetime.now(UTC)
    log = http.get("/_emulator/presence-log", params={
        "tenant": "contoso", "ids": ids, "since": (now - timedelta(hours=2)).isoformat(), "until": now.isoformat()})
    assert log.status_code == 200 and isinstance(log.json()["value"], list)
    wide = http.get("/_emulator/presence-log", params={"tenant": CONTOSO, "since": "2026-01-01T00:00:00Z",
                                                        "until": "2026-01-09T00:00:00Z"})
    assert wide.status_code == 400
    assert http.get("/_emulator/presence-log", params={"tenant": "nowhere"}).status_code == 404
    at = http.get("/_emulator/presence", params={"tenant": "contoso", "ids": ids}).json()
    assert sorted(p["id"] for p in at["value"]) == sorted(ids.split(","))
    assert all(p["availability"] for p in at["value"])


def test_devicecode_control_errors(http: httpx.Client) -> None:
    assert http.post("/_emulator/devicecode/approve", json={"user_code": "NOPE12345"}).status_code == 404
    code = http.post(f"/{CONTOSO}/oauth2/v2.0/devicecode",
                     data={"client_id": "22222222-3333-4444-8555-666666666666", "scope": "openid"}).json()
    wrong_tenant = http.post("/_emulator/devicecode/approve",
                             json={"user_code": code["user_code"], "upn": "svc-presence@fabrikam.com"})
    assert wrong_tenant.status_code == 409
    ok = http.post("/_emulator/devicecode/approve", json={"user_code": code["user_code"]})  # default account
    assert ok.status_code == 200 and ok.json()["upn"] == "svc-presence@contoso.com"
    assert http.post("/_emulator/devicecode/decline", json={"user_code": code["user_code"]}).status_code == 409


def test_directory_changes(emulator: EmulatorServer, http: httpx.Client) -> None:
    fabrikam = emulator.state.world.tenants[FABRIKAM]
    uid = str(uuid.uuid4())
    version = fabrikam.directory_version
    r = http.post("/_emulator/directory", json={"tenant": "fabrikam", "upsert": [{
        "id": uid, "userPrincipalName": "new.agent@fabrikam.com", "displayName": "New Agent"}]})
    assert r.json()["upserted"] == [uid]
    assert fabrikam.user_by_upn("new.agent@fabrikam.com") is not None
    renamed = http.post("/_emulator/directory", json={"tenant": FABRIKAM, "upsert": [
        {"id": uid, "displayName": "Renamed Agent"}]})
    assert renamed.status_code == 200
    assert fabrikam.users[uid].display_name == "Renamed Agent"
    assert fabrikam.users[uid].user_principal_name == "new.agent@fabrikam.com"  # merged, not replaced
    gone = http.post("/_emulator/directory", json={"tenant": "fabrikam", "delete": [uid], "reason": "deleted"})
    assert gone.json()["deleted"] == [uid] and uid not in fabrikam.users
    assert fabrikam.deleted[uid][1] == "deleted" and fabrikam.directory_version == version + 3
    assert http.post("/_emulator/directory", json={"tenant": "fabrikam", "upsert": [{"x": 1}]}).status_code == 400


def test_list_items(emulator: EmulatorServer, http: httpx.Client) -> None:
    lst = emulator.state.world.tenants[FABRIKAM].site.list_by_title("Agents")
    assert lst is not None
    count = len(lst.items)
    added = http.post("/_emulator/lists/items", json={"tenant": "fabrikam", "list": "Agents",
                                                      "add": [{"Title": "Temp", "UPN": "temp@fabrikam.com"}]}).json()
    (item_id,) = added["added"]
    version = lst.items[item_id].version
    http.post("/_emulator/lists/items", json={"tenant": "fabrikam", "list": "Agents",
                                              "update": [{"id": item_id, "fields": {"Team": "Night"}}]})
    assert lst.items[item_id].fields["Team"] == "Night" and lst.items[item_id].version == version + 1
    http.post("/_emulator/lists/items", json={"tenant": "fabrikam", "list": "Agents", "delete": [item_id]})
    assert len(lst.items) == count
    missing = http.post("/_emulator/lists/items", json={"tenant": "fabrikam", "list": "Nope", "add": []})
    assert missing.status_code == 404


def test_tokens_revoke_and_expire(emulator: EmulatorServer, http: httpx.Client) -> None:
    token = app_token(http)
    assert emulator.state.tokens.validate(f"Bearer {token}")
    r = http.post("/_emulator/tokens/revoke", json={"tenant": "fabrikam", "client_id": FAB_APP})
    assert r.json()["revoked"] >= 1
    with pytest.raises(Exception, match="revoked"):
        emulator.state.tokens.validate(f"Bearer {token}")
    fresh = app_token(http)
    other = app_token(http, CONTOSO, APP_ID, "contoso-app-secret-value")
    assert http.post("/_emulator/tokens/expire", json={"tenant": "fabrikam"}).json()["expired"] >= 1
    with pytest.raises(Exception, match="expired"):
        emulator.state.tokens.validate(f"Bearer {fresh}")
    assert emulator.state.tokens.validate(f"Bearer {other}").tenant_id == CONTOSO  # other tenants untouched


def test_reset_restores_faults_and_clock(http: httpx.Client) -> None:
    http.post("/_emulator/faults", json={"error_rate": 0.5})
    http.post("/_emulator/clock", json={"set": "2020-01-01T00:00:00Z", "freeze": True})
    assert http.post("/_emulator/reset").json() == {"reset": True}
    assert http.get("/_emulator/faults").json()["error_rate"] == 0
    clock = http.get("/_emulator/clock").json()
    assert clock["frozen"] is False and clock["now"][:4] == str(datetime.now(UTC).year)


def test_bad_body_is_400(http: httpx.Client) -> None:
    r = http.post("/_emulator/faults", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400 and "JSON" in r.json()["error"]
