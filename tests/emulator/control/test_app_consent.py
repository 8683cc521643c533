"""Consent withdrawn and permissions changed at run time through POST /_emulator/apps."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sync.emulator.model.tenant import Tenant

from ..conftest import APP_ID, APP_SECRET, CONTOSO

PUBLIC_APP = "22222222-3333-4444-8555-666666666666"


@pytest.fixture()
def restore_apps(contoso: Tenant) -> Iterator[None]:
    saved = [(a, a.admin_consented, list(a.application_permissions), list(a.delegated_permissions))
             for a in contoso.apps]
    yield
    for app, consented, app_perms, delegated in saved:
        app.admin_consented, app.application_permissions, app.delegated_permissions = consented, app_perms, delegated


def app_token(http: httpx.Client) -> httpx.Response:
    return http.post(f"/{CONTOSO}/oauth2/v2.0/token", data={
        "client_id": APP_ID, "client_secret": APP_SECRET, "grant_type": "client_credentials",
        "scope": "https://graph.microsoft.com/.default"})


def users(http: httpx.Client, token: str) -> httpx.Response:
    return http.get("/v1.0/users?$top=1", headers={"Authorization": f"Bearer {token}"})


def change(http: httpx.Client, **body: Any) -> httpx.Response:
    return http.post("/_emulator/apps", json={"tenant": "contoso", **body})


def test_withdrawn_consent_gives_tokens_without_roles(http: httpx.Client, restore_apps: None) -> None:
    before = app_token(http).json()["access_token"]
    r = change(http, client_id=APP_ID, admin_consented=False)
    assert r.status_code == 200 and r.json()["admin_consented"] is False
    after = app_token(http)
    assert after.status_code == 200  # Entra still issues a client-credentials token, just without roles
    denied = users(http, after.json()["access_token"])
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "Authorization_RequestDenied"
    assert users(http, before).status_code == 200  # issued before the change: valid until revoked
    http.post("/_emulator/tokens/revoke", json={"tenant": "contoso", "client_id": APP_ID})
    assert users(http, before).status_code == 401
    change(http, client_id=APP_ID, admin_consented=True)
    assert users(http, app_token(http).json()["access_token"]).status_code == 200


def test_changed_permissions_apply_to_new_tokens(http: httpx.Client, restore_apps: None) -> None:
    r = change(http, client_id=APP_ID, permissions=["User.Read.All"])
    assert r.json()["permissions"] == ["User.Read.All"]
    token = app_token(http).json()["access_token"]
    assert users(http, token).status_code == 200
    presence = http.post("/v1.0/communications/getPresencesByUserId", json={"ids": []},
                         headers={"Authorization": f"Bearer {token}"})
    assert presence.status_code == 403


def test_delegated_without_consent_is_aadsts65001(http: httpx.Client, restore_apps: None) -> None:
    assert change(http, client_id=PUBLIC_APP, admin_consented=False).status_code == 200
    r = http.post(f"/{CONTOSO}/oauth2/v2.0/token", data={
        "client_id": PUBLIC_APP, "grant_type": "password", "username": "svc-presence@contoso.com",
        "password": "Pr3sence-Sync!2026", "scope": "https://graph.microsoft.com/.default"})
    assert r.status_code == 400
    body = r.json()
    assert body["error"] == "invalid_grant" and 65001 in body["error_codes"]
    assert body["suberror"] == "consent_required"


def test_bad_app_changes_say_what_is_wrong(http: httpx.Client) -> None:
    missing = change(http, client_id="00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and "no app" in missing.json()["error"]
    assert "client_id is required" in change(http).json()["error"]
    bad = change(http, client_id=APP_ID, permissions="Sites.ReadWrite.All")
    assert bad.status_code == 400 and "list of names" in bad.json()["error"]
    odd = change(http, client_id=APP_ID, roles=[])
    assert odd.status_code == 400 and "roles" in odd.json()["error"]
