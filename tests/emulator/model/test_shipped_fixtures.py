"""The two tenants the local tenant serves by default ship in the package and are found through importlib.resources;
a folder without tenant documents, or a broken one, is named as the cause."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from sync.emulator.model.fixtures import FixturesError, default_fixtures_dir, load_world

ROOT = Path(__file__).resolve().parents[3]


def test_the_shipped_fixtures_are_found_through_the_package() -> None:
    shipped = default_fixtures_dir()
    names = sorted(e.name for e in shipped.iterdir() if e.name.endswith(".json"))
    assert names == ["contoso.answers.json", "contoso.json", "fabrikam.answers.json", "fabrikam.json"]
    assert Path(str(shipped)) == ROOT / "sync" / "emulator" / "fixtures"
    assert sorted(t.name for t in load_world().tenants.values()) == ["contoso", "fabrikam"]


def test_a_folder_without_tenants_or_with_a_broken_one_is_named(tmp_path: Path) -> None:
    empty = tmp_path / "tenants"
    empty.mkdir()
    (empty / "contoso.answers.json").write_text("{}", encoding="utf-8")  # an answer key is no tenant
    with pytest.raises(FixturesError, match=f"no tenant fixtures in {empty}"):
        load_world(empty)
    with pytest.raises(FixturesError, match="does not exist"):
        load_world(tmp_path / "nowhere")
    with pytest.raises(FixturesError, match="no fixture for tenant.s. nobody"):
        load_world(names=["nobody"])
    (empty / "broken.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(FixturesError, match=r"broken\.json is not a readable tenant document"):
        load_world(empty)
    (empty / "broken.json").write_text(json.dumps({"name": "x"}), encoding="utf-8")
    with pytest.raises(FixturesError, match="KeyError"):
        load_world(empty)


def test_the_emulator_names_an_empty_fixtures_folder(tmp_path: Path) -> None:
    empty = tmp_path / "tenants"
    empty.mkdir()
    r = subprocess.run([sys.executable, "-m", "sync.emulator", "--state-dir", str(tmp_path / "s"), "--fixtures",
                        str(empty), "--port", "0"], cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert f"error: no tenant fixtures in {empty}" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
