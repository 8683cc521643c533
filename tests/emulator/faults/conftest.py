"""The fault tests' shared fixture: set fault switches for one test, back to defaults afterwards."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest


@pytest.fixture()
def faults(http: httpx.Client) -> Iterator[Any]:
    """Set fault switches for one test; everything goes back to defaults afterwards."""
    def set_faults(**switches: Any) -> dict[str, Any]:
        r = http.post("/_emulator/faults", json={"replace": True, **switches})
        assert r.status_code == 200, r.text
        return dict(r.json())
    yield set_faults
    http.post("/_emulator/reset")
