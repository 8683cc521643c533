"""The `validate` command's summary: validate every account's roster, write validation.csv and print findings
by code and account."""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .config import Settings
from .errors import EXIT_NEEDS_HUMAN, EXIT_OK, EXIT_PARTIAL, NeedsHumanError, SyncError
from .job import account_runtimes
from .models import CODES, ValidationRow
from .outputs.csv import write_validation_csv

__all__ = ["print_validation_summary", "run_validation"]

log = logging.getLogger(__name__)


async def run_validation(settings: Settings) -> tuple[list[tuple[str, ValidationRow]], int]:
    """Validate each active account's roster; write validation.csv; return the rows and an exit code."""
    rows: list[tuple[str, ValidationRow]] = []
    code = EXIT_OK
    async with account_runtimes(settings) as (runtimes, setup_failed):
        if setup_failed:
            code = EXIT_NEEDS_HUMAN
        for rt in runtimes:
            if not rt.ready:
                log.error("account %s has no login yet; run `presence-sync login --account %s`",
                          rt.account_id, rt.account_id)
                code = EXIT_NEEDS_HUMAN
                continue
            try:
                loops = rt.loops()
                await loops.domains.step()
                rows += [(rt.account_id, v) for v in await loops.roster_loop.step()]
            except NeedsHumanError as exc:
                log.error("%s", exc)
                code = EXIT_NEEDS_HUMAN
            except SyncError as exc:
                log.error("account %s: %s", rt.account_id, exc)
                code = max(code, EXIT_PARTIAL)
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    write_validation_csv(settings.out_dir / "validation.csv", rows, settings.csv_encoding)
    return rows, code


def print_validation_summary(console: Console, rows: list[tuple[str, ValidationRow]], path: Path) -> None:
    accounts = sorted({a for a, _ in rows})
    counts: Counter[tuple[str, str]] = Counter()
    status: Counter[tuple[str, str]] = Counter()
    for acc, v in rows:
        status[(acc, v.status)] += 1
        for c in v.codes:
            counts[(acc, c)] += 1
    table = Table(title="UPN findings by code and account")
    table.add_column("code")
    table.add_column("severity")
    for acc in accounts:
        table.add_column(acc, justify="right")
    for code, sev in CODES.items():
        if any(counts[(a, code)] for a in accounts):
            table.add_row(code, sev, *(str(counts[(a, code)]) for a in accounts))
    for st in ("ok", "fixed", "invalid"):
        table.add_row(f"rows {st}", "", *(str(status[(a, st)]) for a in accounts), style="bold")
    console.print(table)
    console.print(f"validation.csv: {path}", highlight=False)
