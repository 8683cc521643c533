"""``python -m sync.emulator``: the local Microsoft 365 tenant in the foreground."""

from __future__ import annotations

from .cli import main

raise SystemExit(main())
