"""Shared fixtures: one local tenant over HTTPS on loopback for the whole test session."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sync.emulator.server import EmulatorServer


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    """A running local tenant (the shipped fixtures), shared by the session; reset state in tests that need it."""
    srv = EmulatorServer(state_dir=tmp_path_factory.mktemp("emulator-state")).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def ca_file(emulator: EmulatorServer) -> Path:
    return emulator.tls.ca_cert


@pytest.fixture(scope="session")
def ssl_context(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


@pytest.fixture()
def http(emulator: EmulatorServer, ssl_context: ssl.SSLContext) -> Iterator[httpx.Client]:
    """An httpx client that trusts the local CA, rooted at the emulator."""
    with httpx.Client(base_url=emulator.base_url, verify=ssl_context, timeout=30) as c:
        yield c
