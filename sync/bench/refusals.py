"""The bench's refusal scenarios: the job's cold start against a tenant that refuses request shapes.

Each scenario switches the local tenant's ``refuse`` fault on (the latency model stays on), runs the job from an
empty state directory for N seconds, and keeps three figures: the first presence read (every account has read
presence for some of its agents), the first complete snapshot (every agent of every account) and freshness p95
after it. A scenario that takes the Graph list route away runs a delegated account: an application account with
a client secret has no other way to its Agent list (the job says so and exits 1; see the README).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .report import FRESHNESS_LIMIT, Target, _fmt, _num, pipe_table
from .tenant import TenantProcess

__all__ = ["FIRST_PRESENCE_LIMIT", "PAGING_SNAPSHOT_LIMIT", "SCENARIOS", "RefusalScenario", "pick_scenarios",
           "refusal_targets",
           "render_refusals", "run_refusals"]

FIRST_PRESENCE_LIMIT = 15.0  # seconds from start to the first presence read, whatever is refused
PAGING_SNAPSHOT_LIMIT = 60.0  # seconds to the first complete snapshot on the slowest directory rung
NO_REFUSAL_SNAPSHOT_LIMIT = 10.0  # seconds: the cold start with every shape accepted is no worse than before


@dataclass(frozen=True)
class RefusalScenario:
    name: str
    refuse: tuple[str, ...]
    delegated: bool = False  # run a delegated account (the list route is refused)

    @property
    def account(self) -> str:
        return "delegated" if self.delegated else "application"


_DIRECTORY = ("startswith", "ge", "le", "advanced")
SCENARIOS: tuple[RefusalScenario, ...] = (
    RefusalScenario("none", ()),
    RefusalScenario("startswith", ("startswith",)),
    RefusalScenario("ge", ("ge",)),
    RefusalScenario("le", ("le",)),
    RefusalScenario("advanced", ("advanced",)),
    RefusalScenario("plain-paging", _DIRECTORY),
    RefusalScenario("deltatoken-latest", ("deltatoken-latest",)),
    RefusalScenario("batch", ("batch",)),
    RefusalScenario("list-route", ("list-route",), delegated=True),
    RefusalScenario("list-threshold", ("list-threshold",)),
    RefusalScenario("all", (*_DIRECTORY, "deltatoken-latest", "batch", "list-route", "list-threshold"),
                    delegated=True),
)



def pick_scenarios(names: str | None) -> tuple[RefusalScenario, ...]:
    """The scenarios named in a comma-separated list (None or empty: every one); a ValueError names the unknown
    ones and the known ones."""
    if names is None or names.strip() == "":
        return SCENARIOS
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    known = {sc.name: sc for sc in SCENARIOS}
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise ValueError(f"unknown refusal scenario(s): {', '.join(unknown)} (known: {', '.join(known)})")
    return tuple(known[n] for n in wanted)


Measure = Callable[[TenantProcess, Path, bool], dict[str, Any]]


def _set_refusals(tenant: TenantProcess, shapes: tuple[str, ...]) -> None:
    """Fresh budgets and counters, the latency model kept, and exactly ``shapes`` refused."""
    tenant.fresh_budgets()
    faults = tenant.control("GET", "/_emulator/faults")
    tenant.control("POST", "/_emulator/faults", {**faults, "refuse": list(shapes), "replace": True})


def run_refusals(tenant: TenantProcess, work: Path, measure: Measure,
                 scenarios: tuple[RefusalScenario, ...] = SCENARIOS,
                 say: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Run ``measure(tenant, workdir, delegated)`` once per scenario; the tenant refuses nothing afterwards."""
    rows: list[dict[str, Any]] = []
    try:
        for n, sc in enumerate(scenarios, 1):
            say(f"refusals {n}/{len(scenarios)}: {sc.name} ({', '.join(sc.refuse) or 'nothing refused'}; "
                f"{sc.account} account)")
            _set_refusals(tenant, sc.refuse)
            workdir = work / f"refusal-{n:02d}"
            workdir.mkdir(parents=True)
            job = measure(tenant, workdir, sc.delegated)
            rows.append({"name": sc.name, "refuse": list(sc.refuse), "account": sc.account,
                         "exit_code": job.get("exit_code"), "first_presence_read_s": job.get("first_presence_read_s"),
                         "first_complete_snapshot_s": job.get("first_complete_snapshot_s"),
                         "freshness_p95": job.get("freshness_p95"), "ticks": job.get("ticks")})
    finally:
        _set_refusals(tenant, ())
    return rows


def _snapshot_limit(row: dict[str, Any]) -> float:
    return NO_REFUSAL_SNAPSHOT_LIMIT if not row.get("refuse") else PAGING_SNAPSHOT_LIMIT


def refusal_targets(rows: list[dict[str, Any]]) -> list[Target]:
    """Per scenario: first presence read <= 15 s, first complete snapshot <= 60 s (10 s when nothing is refused),
    freshness p95 <= 1.05 s once complete, and exit 0."""
    out: list[Target] = []
    for row in rows:
        key, name = f"refusal:{row['name']}", f"refused {row['name']}"
        out += [
            Target(f"{name}: first presence read", _num(row, "first_presence_read_s"), "<=", FIRST_PRESENCE_LIMIT,
                   "s", f"{key}:first_presence_read"),
            Target(f"{name}: first complete snapshot", _num(row, "first_complete_snapshot_s"), "<=",
                   _snapshot_limit(row), "s", f"{key}:first_complete_snapshot"),
            Target(f"{name}: freshness p95", _num(row, "freshness_p95"), "<=", FRESHNESS_LIMIT, "s",
                   f"{key}:freshness_p95"),
            Target(f"{name}: exit code", _num(row, "exit_code"), "==", 0, "", f"{key}:exit_code"),
        ]
    return out


def render_refusals(rows: list[dict[str, Any]], targets: list[Target]) -> str:
    """One row per scenario: what is refused, the account, the three figures, and PASS/FAIL over its targets."""
    by_key = {t.key: t for t in targets}
    header = ["refused", "account", "first presence", "first complete", "freshness p95", "result"]
    lines: list[list[str]] = []
    for row in rows:
        mine = [t for k, t in by_key.items() if k.startswith(f"refusal:{row['name']}:")]
        status = "FAIL" if any(t.passed is False for t in mine) else (
            "PASS" if any(t.passed for t in mine) else "n/a")
        if row.get("exit_code") not in (0, None):
            status += f" (exit {row['exit_code']})"
        lines.append([row["name"], row["account"], _fmt(row.get("first_presence_read_s"), "s"),
                      _fmt(row.get("first_complete_snapshot_s"), "s"), _fmt(row.get("freshness_p95"), "s"), status])
    limits = (f"targets: first presence <= {FIRST_PRESENCE_LIMIT:g} s; first complete <= "
              f"{NO_REFUSAL_SNAPSHOT_LIMIT:g} s with nothing refused, <= {PAGING_SNAPSHOT_LIMIT:g} s otherwise; "
              f"freshness p95 <= {FRESHNESS_LIMIT:g} s once complete; exit 0")
    return "\n".join(["refused request shapes (cold start from an empty state directory, latency on):",
                      pipe_table(header, lines, right={2, 3, 4}), limits])
