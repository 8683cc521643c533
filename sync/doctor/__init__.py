"""``presence-sync doctor``: check each account's reachability, credential, permissions, Agent list, presence
and budgets, and say exactly what to fix."""

from __future__ import annotations

from .render import render_json, render_plain, render_tables, show
from .rules import AccountReport, Row, exit_code
from .run import run_doctor

__all__ = ["AccountReport", "Row", "exit_code", "render_json", "render_plain", "render_tables", "run_doctor", "show"]
