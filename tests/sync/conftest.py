"""Fixtures for the end-to-end tests of the job (test_e2e_*.py); the helpers live in e2e_support.py.

pytest runs with --import-mode=importlib, so this folder is put on sys.path here for ``import e2e_support``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import e2e_support as sup  # noqa: E402

from sync.bench.postgres import TemporaryPostgres  # noqa: E402
from sync.emulator.server import EmulatorServer  # noqa: E402


@pytest.fixture(scope="session")
def tenant_info(emulator: EmulatorServer) -> dict[str, Any]:
    """GET /_emulator/info: base URL, tenants, apps, site URLs."""
    with sup.control(emulator.base_url, emulator.tls.ca_cert) as c:
        return dict(c.get("/_emulator/info").json())


@pytest.fixture(scope="session")
def agent_lists(emulator: EmulatorServer) -> Iterator[None]:
    """Write-back changes the fixture lists: put their fields back when the session ends."""
    saved = {name: sup.list_fields(emulator, name) for name in ("contoso", "fabrikam")}
    yield
    for name, items in saved.items():
        tenant = emulator.state.world.resolve_tenant(name)
        lst = tenant.site.list_by_title("Agents") if tenant is not None else None
        assert lst is not None
        for item_id, fields in items.items():
            if item_id in lst.items:
                lst.items[item_id].fields = dict(fields)


@pytest.fixture()
def ctl(emulator: EmulatorServer, agent_lists: None) -> Iterator[httpx.Client]:
    """The control API; faults, clock, budgets and counters are reset before and after the test."""
    with sup.control(emulator.base_url, emulator.tls.ca_cert) as c:
        c.post("/_emulator/reset")
        try:
            yield c
        finally:
            c.post("/_emulator/reset")


@pytest.fixture()
def frozen_clock(ctl: httpx.Client) -> httpx.Client:
    """Presence stands still, so two runs see the same values."""
    ctl.post("/_emulator/clock", json={"freeze": True})
    return ctl


@pytest.fixture()
def limits(ctl: httpx.Client) -> Iterator[Callable[[dict[str, Any]], None]]:
    """Change the tenant's limits for one test (``/_emulator/reset`` keeps them); the originals come back after."""
    saved = ctl.get("/_emulator/limits").json()

    def change(values: dict[str, Any]) -> None:
        assert ctl.post("/_emulator/limits", json=values).status_code == 200
    yield change
    ctl.post("/_emulator/limits", json=saved)


@pytest.fixture(scope="session")
def postgres() -> Iterator[TemporaryPostgres]:
    """A real PostgreSQL server for the session, in a temporary directory (Debian's initdb and pg_ctl; ``.ci/run``
    installs the postgresql package when it is missing). Tests make a database each (``create_database``)."""
    with TemporaryPostgres() as pg:
        yield pg
