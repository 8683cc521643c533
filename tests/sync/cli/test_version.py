"""One version, pyproject.toml's: `presence-sync --version`, the package metadata, the User-Agent, the CHANGELOG."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

from sync.http import USER_AGENT
from sync.version import package_version

ROOT = Path(__file__).resolve().parents[3]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]


def test_the_installed_metadata_carries_the_pyproject_version() -> None:
    assert version("presence-sync") == package_version() == PYPROJECT
    assert USER_AGENT.endswith(f"presence-sync/{PYPROJECT}")


def test_version_option_prints_it_and_exits_0(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "sync.cli", "--version"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"presence-sync {PYPROJECT}\n" and r.stderr == ""


def test_the_changelog_has_a_heading_for_the_version() -> None:
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## \[([^\]]+)\](?: - (\d{4}-\d{2}-\d{2}))?$", text, re.M)
    released = {v: day for v, day in headings if v != "Unreleased"}
    assert PYPROJECT in released, f"CHANGELOG.md has no '## [{PYPROJECT}] - YYYY-MM-DD' heading"
    assert released[PYPROJECT], "the release heading needs its date"
    assert headings[0][0] == "Unreleased"  # the next changes go above the release
