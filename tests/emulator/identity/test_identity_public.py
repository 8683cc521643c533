"""Delegated sign-in with msal's PublicClientApplication: device code, ROPC, and a cache reused by a second process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import msal
import pytest
import requests

from sync.emulator.server import EmulatorServer

CONTOSO = "6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"
PUBLIC_APP = "22222222-3333-4444-8555-666666666666"
UNCONSENTED_APP = "22222222-3333-4444-8555-666666666667"
SVC, SVC_PW = "svc-presence@contoso.com", "Pr3sence-Sync!2026"
SCOPES = ["https://graph.microsoft.com/.default"]


class EmulatorHttp:
    """MSAL drops the port from the userrealm URL (https://127.0.0.1/common/userrealm/...): put it back."""

    def __init__(self, netloc: str, session: requests.Session) -> None:
        self.netloc, self.session = netloc, session

    def _fix(self, url: str) -> str:
        u = urlsplit(url)
        return urlunsplit(u._replace(netloc=self.netloc)) if u.netloc == self.netloc.split(":")[0] else url

    def get(self, url: str, **kw: Any) -> requests.Response:
        return self.session.get(self._fix(url), **kw)

    def post(self, url: str, **kw: Any) -> requests.Response:
        return self.session.post(self._fix(url), **kw)

    def close(self) -> None:
        self.session.close()


@pytest.fixture()
def http_client(emulator: EmulatorServer, ca_file: Path) -> Iterator[EmulatorHttp]:
    s = requests.Session()
    s.verify, s.trust_env = str(ca_file), False
    yield EmulatorHttp(urlsplit(emulator.base_url).netloc, s)
    s.close()


def pca(emulator: EmulatorServer, http_client: EmulatorHttp, client_id: str = PUBLIC_APP,
        tenant: str = CONTOSO, cache: msal.TokenCache | None = None) -> msal.PublicClientApplication:
    return msal.PublicClientApplication(client_id, authority=f"{emulator.base_url}/{tenant}",
                                        instance_discovery=False, http_client=http_client, token_cache=cache)


def control(http: httpx.Client, action: str, **body: str) -> httpx.Response:
    return http.post(f"/_emulator/devicecode/{action}", json=body)


def test_device_flow_pending_then_approved(emulator: EmulatorServer, http_client: EmulatorHttp,
                                           http: httpx.Client) -> None:
    app = pca(emulator, http_client)
    flow = app.initiate_device_flow(scopes=SCOPES)
    assert len(flow["user_code"]) == 9 and flow["interval"] == 0
    assert flow["verification_uri"] == f"{emulator.base_url}/devicelogin"
    assert flow["message"].startswith(f"To sign in, use a web browser to open the page {emulator.base_url}")
    assert flow["user_code"] in flow["message"]
    pending = http.get("/_emulator/devicecode").json()["value"]
    assert any(p["user_code"] == flow["user_code"] and p["client_id"] == PUBLIC_APP for p in pending)
    polls_before = emulator.state.stats.requests["identity.token"]

    def approve_later() -> None:
        time.sleep(0.3)
        control(http, "approve", user_code=flow["user_code"], upn=SVC).raise_for_status()

    t = threading.Thread(target=approve_later)
    t.start()
    result = app.acquire_token_by_device_flow(flow)
    t.join()
    assert "access_token" in result, result
    assert emulator.state.stats.requests["identity.token"] - polls_before >= 2  # pending, then approved
    assert result["id_token_claims"]["preferred_username"] == SVC
    assert result["id_token_claims"]["aud"] == PUBLIC_APP
    assert result["id_token_claims"]["tid"] == CONTOSO
    info = emulator.state.tokens.validate(f"Bearer {result['access_token']}")
    assert info.user_upn == SVC and "Presence.Read.All" in info.permissions
    accounts = app.get_accounts()
    assert [a["username"] for a in accounts] == [SVC]
    assert accounts[0]["home_account_id"].endswith(f".{CONTOSO}")
    silent = app.acquire_token_silent(SCOPES, account=accounts[0])
    assert silent and silent["access_token"] == result["access_token"]
    # the code was redeemed: polling it again fails
    again = app.client.obtain_token_by_device_flow(dict(flow, expires_at=0), exit_condition=lambda f: True)
    assert again["error"] == "invalid_grant"


@pytest.mark.parametrize(("action", "error", "code"), [("decline", "authorization_declined", 70000),
                                                       ("expire", "expired_token", 70019)])
def test_device_flow_declined_or_expired(emulator: EmulatorServer, http_client: EmulatorHttp, http: httpx.Client,
                                         action: str, error: str, code: int) -> None:
    app = pca(emulator, http_client)
    flow = app.initiate_device_flow(scopes=SCOPES)
    assert control(http, action, user_code=flow["user_code"]).status_code == 200
    result = app.acquire_token_by_device_flow(flow)
    assert result["error"] == error and result["error_codes"] == [code]


def test_device_flow_unconsented_app(emulator: EmulatorServer, http_client: EmulatorHttp,
                                     http: httpx.Client) -> None:
    app = pca(emulator, http_client, client_id=UNCONSENTED_APP)
    flow = app.initiate_device_flow(scopes=SCOPES)
    control(http, "approve", user_code=flow["user_code"], upn=SVC).raise_for_status()
    result = app.acquire_token_by_device_flow(flow)
    assert result["error_codes"] == [65001] and result["suberror"] == "consent_required"


def test_device_flow_slow_down_and_bad_code(emulator: EmulatorServer, http: httpx.Client) -> None:
    r = http.post(f"/{CONTOSO}/oauth2/v2.0/devicecode", data={"client_id": PUBLIC_APP, "scope": "openid"})
    code = r.json()
    control(http, "slow_down", user_code=code["user_code"]).raise_for_status()
    poll = {"client_id": PUBLIC_APP, "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": code["device_code"]}
    assert http.post(f"/{CONTOSO}/oauth2/v2.0/token", data=poll).json()["error"] == "slow_down"
    assert http.post(f"/{CONTOSO}/oauth2/v2.0/token", data=poll).json()["error"] == "authorization_pending"
    bad = http.post(f"/{CONTOSO}/oauth2/v2.0/token", data={**poll, "device_code": "nope"}).json()
    assert bad["error"] == "bad_verification_code"


def test_devicelogin_page_approves_with_password(emulator: EmulatorServer, http: httpx.Client) -> None:
    code = http.post("/organizations/oauth2/v2.0/devicecode",
                     data={"client_id": PUBLIC_APP, "scope": "openid offline_access"}).json()
    page = http.get("/devicelogin")
    assert page.status_code == 200 and "local tenant" in page.text and 'name="user_code"' in page.text
    wrong = http.post("/devicelogin", data={"user_code": code["user_code"], "upn": SVC, "password": "guess"})
    assert wrong.status_code == 400 and "incorrect" in wrong.text
    ok = http.post("/devicelogin", data={"user_code": code["user_code"].lower(), "upn": SVC, "password": SVC_PW})
    assert ok.status_code == 200 and "signed in" in ok.text
    r = http.post("/organizations/oauth2/v2.0/token", data={
        "client_id": PUBLIC_APP, "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
        "device_code": code["device_code"]})
    assert r.status_code == 200, r.text
    assert r.json()["refresh_token"] and r.json()["scope"] == "openid"


def test_ropc_success_and_errors(emulator: EmulatorServer, http_client: EmulatorHttp) -> None:
    ok = pca(emulator, http_client).acquire_token_by_username_password(SVC, SVC_PW, scopes=SCOPES)
    assert "access_token" in ok, ok
    assert ok["id_token_claims"]["preferred_username"] == SVC
    cases = [(PUBLIC_APP, SVC, "wrong-password", 50126, None),
             (PUBLIC_APP, "svc-mfa@contoso.com", "Mfa-Required!2026", 50076, "basic_action"),
             (UNCONSENTED_APP, SVC, SVC_PW, 65001, "consent_required"),
             (PUBLIC_APP, "nobody@contoso.com", "x", 50034, None)]
    for client_id, user, password, code, suberror in cases:
        r = pca(emulator, http_client, client_id).acquire_token_by_username_password(user, password, scopes=SCOPES)
        assert r.get("error_codes") == [code], (code, r)
        assert r["error"] == "invalid_grant"
        assert r.get("suberror") == suberror
        if code == 50076:
            assert json.loads(r["claims"])["access_token"]["capolids"]["essential"] is True


def test_ropc_on_organizations_takes_the_tenant_from_the_upn(emulator: EmulatorServer,
                                                             http_client: EmulatorHttp) -> None:
    r = pca(emulator, http_client, tenant="organizations").acquire_token_by_username_password(
        SVC, SVC_PW, scopes=["User.ReadBasic.All"])
    assert "access_token" in r, r
    assert r["id_token_claims"]["tid"] == CONTOSO
    assert emulator.state.tokens.validate(f"Bearer {r['access_token']}").permissions == {"User.ReadBasic.All"}


def test_public_client_flows_disabled_for_confidential_app(http: httpx.Client) -> None:
    r = http.post(f"/{CONTOSO}/oauth2/v2.0/token", data={
        "client_id": "11111111-2222-4333-8444-555555555555", "grant_type": "password", "username": SVC,
        "password": SVC_PW, "scope": "openid " + SCOPES[0]})
    assert r.status_code == 401 and r.json()["error_codes"] == [7000218]


def test_bad_refresh_token(http: httpx.Client) -> None:
    r = http.post(f"/{CONTOSO}/oauth2/v2.0/token", data={
        "client_id": PUBLIC_APP, "grant_type": "refresh_token", "refresh_token": "0.EMU.nope", "scope": "openid"})
    assert r.status_code == 400 and r.json()["error_codes"] == [70008]


SECOND_PROCESS = textwrap.dedent("""
    import json, sys
    import msal, requests
    from urllib.parse import urlsplit, urlunsplit
    base, ca, cache_file, scope = sys.argv[1:5]
    s = requests.Session(); s.verify = ca; s.trust_env = False
    cache = msal.SerializableTokenCache()
    cache.deserialize(open(cache_file).read())
    app = msal.PublicClientApplication("%s", authority=base + "/%s", instance_discovery=False,
                                       http_client=s, token_cache=cache)
    accounts = app.get_accounts()
    cached = app.acquire_token_silent([scope], account=accounts[0])
    refreshed = app.acquire_token_silent([scope], account=accounts[0], force_refresh=True)
    print(json.dumps({"accounts": [a["username"] for a in accounts],
                      "cached": cached and cached.get("token_source"), "cached_at": cached and cached["access_token"],
                      "refreshed": refreshed and refreshed.get("token_source"),
                      "refreshed_at": refreshed and refreshed["access_token"]}))
""") % (PUBLIC_APP, CONTOSO)


def test_cache_reused_by_a_second_process(emulator: EmulatorServer, http_client: EmulatorHttp,
                                          http: httpx.Client, ca_file: Path, tmp_path: Path) -> None:
    cache = msal.SerializableTokenCache()
    app = pca(emulator, http_client, cache=cache)
    flow = app.initiate_device_flow(scopes=SCOPES)
    control(http, "approve", user_code=flow["user_code"], upn=SVC).raise_for_status()
    first = app.acquire_token_by_device_flow(flow)
    assert "access_token" in first, first
    cache_file = tmp_path / "cache.json"
    cache_file.write_text(cache.serialize())
    tokens_before = emulator.state.stats.requests["identity.token"]
    devicecodes_before = emulator.state.stats.requests["identity.devicecode"]
    out = subprocess.run([sys.executable, "-c", SECOND_PROCESS, emulator.base_url, str(ca_file), str(cache_file),
                          SCOPES[0]], capture_output=True, text=True, timeout=20, check=True)
    seen = json.loads(out.stdout)
    assert seen["accounts"] == [SVC]
    assert seen["cached"] == "cache" and seen["cached_at"] == first["access_token"]
    assert seen["refreshed"] == "identity_provider" and seen["refreshed_at"] != first["access_token"]
    assert emulator.state.stats.requests["identity.token"] == tokens_before + 1  # only the refresh
    assert emulator.state.stats.requests["identity.devicecode"] == devicecodes_before  # no new login
    assert emulator.state.tokens.validate(f"Bearer {seen['refreshed_at']}").user_upn == SVC
