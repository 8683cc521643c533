"""Fixtures shared by the Graph tests of the local tenant."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import httpx
import pytest

from sync.emulator.model.tenant import Tenant
from sync.emulator.server import EmulatorServer

CONTOSO = "6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"
APP_ID = "11111111-2222-4333-8444-555555555555"
APP_SECRET = "contoso-app-secret-value"


@pytest.fixture()
def graph(http: httpx.Client) -> Iterator[httpx.Client]:
    """The shared client, with a bearer token of the contoso application (client credentials)."""
    r = http.post(f"/{CONTOSO}/oauth2/v2.0/token", data={
        "client_id": APP_ID, "client_secret": APP_SECRET, "grant_type": "client_credentials",
        "scope": "https://graph.microsoft.com/.default"})
    assert r.status_code == 200, r.text
    http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
    yield http
    http.headers.pop("Authorization", None)


@pytest.fixture()
def contoso(emulator: EmulatorServer) -> Tenant:
    return emulator.state.world.tenants[CONTOSO]


@pytest.fixture()
def limits(emulator: EmulatorServer) -> Iterator[EmulatorServer]:
    """Lets a test change ``state.limits``; limits and budgets are restored afterwards."""
    state = emulator.state
    saved = dataclasses.replace(state.limits)
    state.throttle.reset()
    state.sp_quota.reset()
    try:
        yield emulator
    finally:
        state.limits.__dict__.update(saved.__dict__)
        state.apply_limits()
        state.throttle.reset()
        state.sp_quota.reset()
