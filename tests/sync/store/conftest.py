"""The store tests' fixtures: a fresh store in a test's own state directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sync.store import Store


@pytest.fixture()
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "presence-sync.sqlite"


@pytest.fixture()
def store(db: Path) -> Iterator[Store]:
    s = Store(db)
    yield s
    s.close()
