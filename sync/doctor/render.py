"""How ``doctor`` shows its rows: a rich table per account on a terminal, plain lines otherwise, or JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from .rules import FAIL, OK, SKIPPED, WARN, AccountReport, exit_code

__all__ = ["render_json", "render_plain", "render_tables", "show"]

_MODE = {"secret": "application permissions, client secret", "password": "delegated, username and password",
         "device": "delegated, device-code login"}
_STYLE = {OK: "green", WARN: "yellow", FAIL: "bold red", SKIPPED: "dim"}


def _heading(rep: AccountReport) -> str:
    return f"account {rep.account_id} (tenant {rep.tenant_id}, {_MODE.get(rep.mode, rep.mode)})"


def _summary(reports: Sequence[AccountReport]) -> str:
    fails = sum(r.status == FAIL for rep in reports for r in rep.rows)
    warns = sum(r.status == WARN for rep in reports for r in rep.rows)
    if not fails:
        return f"all checks passed ({warns} warning(s))" if warns else "all checks passed"
    return f"{fails} check(s) failed, {warns} warning(s): a person has to act (exit 3)"


def render_plain(reports: Sequence[AccountReport]) -> str:
    """One line per check: ``  ok    title: detail``, then ``        fix: ...`` when there is one."""
    lines: list[str] = []
    for rep in reports:
        lines.append(_heading(rep))
        for row in rep.rows:
            lines.append(f"  {row.status.upper() if row.status == FAIL else row.status:<8}{row.title}: {row.detail}")
            if row.fix:
                lines.append(f"          fix: {row.fix}")
    lines.append(_summary(reports))
    return "\n".join(lines)


def render_tables(console: Console, reports: Sequence[AccountReport]) -> None:
    for rep in reports:
        table = Table(title=_heading(rep), title_justify="left", show_lines=True, expand=True)
        table.add_column("check", no_wrap=True)
        table.add_column("status", no_wrap=True)
        table.add_column("what was seen", ratio=3, overflow="fold")
        table.add_column("fix", ratio=2, overflow="fold")  # a URL in a fix must stay whole
        for row in rep.rows:
            table.add_row(Text(row.title), Text(row.status, style=_STYLE[row.status]), Text(row.detail),
                          Text(row.fix))
        console.print(table)
    console.print(_summary(reports), highlight=False, markup=False)


def render_json(reports: Sequence[AccountReport]) -> str:
    return json.dumps({"exit_code": exit_code(reports), "accounts": [r.to_json() for r in reports]}, indent=2)


def show(console: Console, reports: Sequence[AccountReport], as_json: bool) -> int:
    """JSON, a table per account on a terminal, plain lines otherwise; returns the exit code."""
    if as_json:
        console.print(render_json(reports), markup=False, highlight=False, soft_wrap=True)
    elif console.is_terminal:
        render_tables(console, reports)
    else:
        console.print(render_plain(reports), markup=False, highlight=False, soft_wrap=True)
    return exit_code(reports)
