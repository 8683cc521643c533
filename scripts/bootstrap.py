#!/usr/bin/env python3
"""Create .venv (if missing or stale) and install presence-sync with its dev extra into it.

Used by the Makefile so that `make demo` and `make test` work on a machine with only python3.
Re-installs when pyproject.toml is newer than the last install.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
STAMP = VENV / ".installed"


def main() -> int:
    py = VENV / "bin" / "python"
    if not py.exists():
        print(f"creating virtual environment in {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pyproject = ROOT / "pyproject.toml"
    if STAMP.exists() and STAMP.stat().st_mtime >= pyproject.stat().st_mtime:
        return 0
    print("installing presence-sync and its dependencies (first run takes a minute or two)", flush=True)
    cmd = [str(py), "-m", "pip", "install", "-qq", "-e", f"{ROOT}[dev]"]  # errors still show
    rc = subprocess.call(cmd)
    if rc == 0:
        STAMP.touch()
    return rc


if __name__ == "__main__":
    sys.exit(main())
