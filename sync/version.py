"""The version of presence-sync: pyproject.toml's ``version``, read back from the installed package's metadata.

pyproject.toml is the one place the version is written; a wheel, an sdist and an editable install all carry it in
their metadata, and ``presence-sync --version`` and the User-Agent of every request read it from there.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version

__all__ = ["DIST_NAME", "package_version"]

DIST_NAME = "presence-sync"


@cache
def package_version() -> str:
    """The installed version, e.g. ``0.1.0``; ``0+unknown`` for a source tree that was never installed."""
    try:
        return version(DIST_NAME)
    except PackageNotFoundError:
        return "0+unknown"
