"""Entra ID client credentials with msal's ConfidentialClientApplication, and the wire shapes behind it."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import msal
import pytest
import requests

from sync.emulator.server import EmulatorServer

CONTOSO = "6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"
APP_ID = "11111111-2222-4333-8444-555555555555"
SECRET = "contoso-app-secret-value"
SECRET_ID = "a1b2c3d4-0000-4000-8000-00000000a001"
EXPIRED_APP = "11111111-2222-4333-8444-555555555556"
GRAPH_DEFAULT = ["https://graph.microsoft.com/.default"]


@pytest.fixture()
def session(ca_file: Path) -> Iterator[requests.Session]:
    """requests trusts the local CA only with trust_env off (this machine sets REQUESTS_CA_BUNDLE)."""
    s = requests.Session()
    s.verify = str(ca_file)
    s.trust_env = False
    yield s
    s.close()


def cca(emulator: EmulatorServer, session: requests.Session, client_id: str = APP_ID, secret: str = SECRET,
        tenant: str = CONTOSO, **kw: object) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        client_id, client_credential=secret, authority=f"{emulator.base_url}/{tenant}",
        instance_discovery=False, http_client=session, **kw)


def test_client_credentials_then_cache_hit(emulator: EmulatorServer, session: requests.Session) -> None:
    before = emulator.state.stats.requests["identity.token"]
    app = cca(emulator, session, token_cache=msal.SerializableTokenCache())
    first = app.acquire_token_for_client(GRAPH_DEFAULT)
    assert first.get("token_type") == "Bearer", first
    assert first["expires_in"] >= 300
    info = emulator.state.tokens.validate(f"Bearer {first['access_token']}")
    assert info.tenant_id == CONTOSO and info.client_id == APP_ID and info.via_secret
    assert info.audience == "https://graph.microsoft.com" and "Presence.Read.All" in info.permissions
    second = app.acquire_token_for_client(GRAPH_DEFAULT)
    assert second["access_token"] == first["access_token"]
    assert second.get("token_source") == "cache"
    assert emulator.state.stats.requests["identity.token"] == before + 1


def test_authority_by_domain_and_audience_of_own_origin(emulator: EmulatorServer,
                                                        session: requests.Session) -> None:
    app = cca(emulator, session, tenant="contoso.com")
    r = app.acquire_token_for_client([f"{emulator.base_url}/.default"])
    assert "access_token" in r, r
    info = emulator.state.tokens.validate(f"Bearer {r['access_token']}")
    assert info.tenant_id == CONTOSO
    assert info.audience == emulator.base_url.lower()


@pytest.mark.parametrize(("client_id", "secret", "code", "words"), [
    (APP_ID, "not-the-secret", 7000215, "client secret value, not the client secret ID"),
    (APP_ID, SECRET_ID, 7000215, "not the client secret ID"),
    (EXPIRED_APP, "contoso-expired-secret", 7000222, "are expired"),
    ("99999999-2222-4333-8444-555555555555", "x", 700016, "was not found in the directory"),
])
def test_client_credentials_errors(emulator: EmulatorServer, session: requests.Session, client_id: str,
                                   secret: str, code: int, words: str) -> None:
    r = cca(emulator, session, client_id, secret).acquire_token_for_client(GRAPH_DEFAULT)  # fresh app each
    assert "access_token" not in r
    assert r["error_codes"] == [code]
    assert r["error_description"].startswith(f"AADSTS{code}: ")
    assert words in r["error_description"]
    assert "\r\nTrace ID: " in r["error_description"] and "\r\nCorrelation ID: " in r["error_description"]
    assert r["trace_id"] and r["correlation_id"] and r["timestamp"]
    assert r["error"] == ("unauthorized_client" if code == 700016 else "invalid_client")


def test_unknown_tenant(emulator: EmulatorServer, session: requests.Session, http: httpx.Client) -> None:
    with pytest.raises(ValueError, match="Unable to get authority configuration"):
        cca(emulator, session, tenant="nowhere.example")
    r = http.post("/nowhere.example/oauth2/v2.0/token", data={
        "client_id": APP_ID, "client_secret": SECRET, "grant_type": "client_credentials",
        "scope": GRAPH_DEFAULT[0]})
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "invalid_request" and body["error_codes"] == [90002]
    assert body["error_description"].startswith("AADSTS90002: Tenant 'nowhere.example' not found.")
    d = http.get("/nowhere.example/v2.0/.well-known/openid-configuration")
    assert d.status_code == 400 and d.json()["error_codes"] == [90002]


def test_error_status_codes_on_the_wire(http: httpx.Client) -> None:
    base = {"grant_type": "client_credentials", "scope": GRAPH_DEFAULT[0]}
    wrong = http.post(f"/{CONTOSO}/oauth2/v2.0/token", data={**base, "client_id": APP_ID, "client_secret": "x"})
    assert wrong.status_code == 401 and wrong.json()["error_uri"].endswith("code=7000215")
    unsupported = http.post(f"/{CONTOSO}/oauth2/v2.0/token", data={"client_id": APP_ID, "grant_type": "magic"})
    assert unsupported.status_code == 400 and unsupported.json()["error"] == "unsupported_grant_type"
    no_default = http.post(f"/{CONTOSO}/oauth2/v2.0/token",
                           data={**base, "client_id": APP_ID, "client_secret": SECRET, "scope": "User.Read"})
    assert no_default.status_code == 400 and no_default.json()["error"] == "invalid_scope"


def test_client_secret_by_http_basic(http: httpx.Client) -> None:
    basic = base64.b64encode(f"{APP_ID}:{SECRET}".encode()).decode()
    r = http.post(f"/{CONTOSO}/oauth2/v2.0/token", headers={"Authorization": f"Basic {basic}"},
                  data={"grant_type": "client_credentials", "scope": GRAPH_DEFAULT[0]})
    assert r.status_code == 200, r.text
    assert r.json()["token_type"] == "Bearer" and "refresh_token" not in r.json()
    assert r.json()["ext_expires_in"] >= 300


def test_openid_configuration(emulator: EmulatorServer, http: httpx.Client) -> None:
    for path in (f"/{CONTOSO}/v2.0/.well-known/openid-configuration", "/contoso/.well-known/openid-configuration",
                 "/contoso.onmicrosoft.com/v2.0/.well-known/openid-configuration"):
        r = http.get(path)
        assert r.status_code == 200, path
        assert r.headers["cache-control"] == "max-age=86400, private"
        doc = r.json()
        assert doc["issuer"] == f"{emulator.base_url}/{CONTOSO}/v2.0"
        assert doc["token_endpoint"] == f"{emulator.base_url}/{CONTOSO}/oauth2/v2.0/token"
        assert doc["device_authorization_endpoint"].endswith("/oauth2/v2.0/devicecode")
        for key in ("authorization_endpoint", "jwks_uri", "end_session_endpoint", "userinfo_endpoint",
                    "response_types_supported", "cloud_instance_name", "msgraph_host"):
            assert doc[key], key
    common = http.get("/organizations/v2.0/.well-known/openid-configuration").json()
    assert common["issuer"] == f"{emulator.base_url}/{{tenantid}}/v2.0"
    assert common["token_endpoint"] == f"{emulator.base_url}/organizations/oauth2/v2.0/token"


def test_instance_discovery_and_userrealm(emulator: EmulatorServer, http: httpx.Client) -> None:
    r = http.get("/common/discovery/instance", params={
        "api-version": "1.1", "authorization_endpoint": f"{emulator.base_url}/{CONTOSO}/oauth2/v2.0/authorize"})
    assert r.json()["tenant_discovery_endpoint"] == \
        f"{emulator.base_url}/{CONTOSO}/v2.0/.well-known/openid-configuration"
    managed = http.get("/common/userrealm/svc-presence@contoso.com", params={"api-version": "1.0"}).json()
    assert managed["account_type"] == "Managed" and managed["domain_name"] == "contoso.com"
    unverified = http.get("/common/userrealm/someone@contoso-sales.com").json()
    assert unverified["account_type"] == "Unknown"
    assert json.dumps(http.get("/common/userrealm/a@nowhere.example").json()).count("Unknown") == 1
