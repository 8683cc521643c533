"""`emulator`, `bench` and `demo`: the local tenant, the benchmark and the guided tour."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from ..errors import SyncError, UsageError
from .common import (
    CsvEncodingOpt,
    _csv_encoding,
    _fail,
    app,
    out,
    setup_logging,
)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True,
                               "help_option_names": []})
def emulator(ctx: typer.Context) -> None:
    """Run the local Microsoft 365 tenant (login, Graph, SharePoint over HTTPS). `presence-sync emulator --help`.

    Example: presence-sync emulator --port 8443 --state-dir ./.state/emulator
    """
    from ..emulator.cli import main as emulator_main

    raise typer.Exit(emulator_main(list(ctx.args)))


@app.command()
def bench(
    seconds: Annotated[float, typer.Option("--seconds", help="How long the job runs (scenario 1).")] = 120.0,
    users: Annotated[int, typer.Option("--users", help="Directory users of the generated tenant.")] = 100_000,
    agents: Annotated[int, typer.Option("--agents", help="Agent-list items of the generated tenant.")] = 30_000,
    latency: Annotated[str, typer.Option("--latency", metavar="SPEC",
                                         help="The local tenant's latency model (per kind, p50:p99 ms).")
                       ] = "presence=150:400,other=80",
    multi_seconds: Annotated[float, typer.Option("--multi-seconds",
                                                 help="How long the 10 x 3,000 scenario runs (0: skip it).")] = 90.0,
    baseline_seconds: Annotated[float, typer.Option("--baseline-seconds",
                                                    help="How long each baseline runs.")] = 20.0,
    refusal_seconds: Annotated[float, typer.Option("--refusal-seconds",
                                                   help="How long the job runs in each refused-shapes scenario "
                                                        "(11 of them; 0: skip them).")] = 45.0,
    refusals: Annotated[str | None, typer.Option("--refusals", metavar="NAMES",
                                                 help="Only these refused-shapes scenarios, comma-separated: "
                                                      "none, startswith, ge, le, advanced, plain-paging, "
                                                      "deltatoken-latest, batch, list-route, list-threshold, "
                                                      "all.")] = None,
    replica_seconds: Annotated[float, typer.Option("--replica-seconds",
                                                   help="How long 3 replicas sharing a PostgreSQL store, and one "
                                                        "process alone, read the 10 x 3,000 tenants (needs "
                                                        "Debian's postgresql; 0: skip it).")] = 60.0,
    json_out: Annotated[Path, typer.Option("--json", metavar="FILE", help="Where the figures go.")
                        ] = Path("bench.json"),
) -> None:
    """Benchmark the job against the local tenant with network latency and quotas, next to two baselines.

    Starts the local tenant in its own process, runs the job at --interval 1 from an empty state directory,
    then the bare httpx loop and the official msgraph-sdk against the same tenant, then the job's cold start
    once per set of refused request shapes, then 10 tenants x 3,000 agents in one process, then the same
    tenants read by 3 replicas sharing a PostgreSQL store next to one process alone; prints a table with
    PASS/FAIL per target and writes the figures as JSON. Exit 0 when every target passes, 1 otherwise.
    Takes about 17 minutes with the defaults (8 with --refusal-seconds 0).

    Example: presence-sync bench --seconds 120 --json bench.json
    """
    from ..bench.refusals import pick_scenarios
    from ..bench.run import BenchOptions, run_bench

    try:
        pick_scenarios(refusals)
    except ValueError as exc:
        raise _fail(UsageError(f"--refusals: {exc}")) from None

    setup_logging("text")
    logging.getLogger("sync").setLevel(logging.WARNING)  # the report is the output; cycle lines would drown it
    opts = BenchOptions(users=users, agents=agents, seconds=seconds, latency=latency,
                        baseline_seconds=baseline_seconds, multi_tenants=10 if multi_seconds > 0 else 0,
                        multi_seconds=multi_seconds, refusal_seconds=refusal_seconds,
                        refusals=refusals, replica_seconds=replica_seconds if multi_seconds > 0 else 0.0)
    text, result = run_bench(opts, json_out)
    out.print(text, markup=False, highlight=False, soft_wrap=True)
    out.print(f"figures written to {json_out}", markup=False, highlight=False)
    raise typer.Exit(0 if result == "PASS" else 1)


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option("--dir", help="Where the demo keeps its config, state and outputs.")]
    = Path("demo"),
    cycles: Annotated[int, typer.Option("--cycles", min=1, metavar="N", help="How many cycles to run.")] = 3,
    interval: Annotated[float, typer.Option("--interval", min=0.5, metavar="SECONDS", help="Seconds between cycles.")] = 2.0,
    csv_encoding: CsvEncodingOpt = None,
) -> None:
    """Start the local tenant, write a matching config, run a few cycles with write-back, show the outputs.

    Example: presence-sync demo --cycles 3 --csv-encoding utf-8-sig
    """
    setup_logging("text")
    from ..demo import run_demo

    try:
        code = run_demo(workdir, cycles=cycles, interval=interval, console=out,
                        csv_encoding=_csv_encoding(csv_encoding))
    except (SyncError, OSError) as exc:
        raise _fail(exc, paths="--dir") from None
    raise typer.Exit(code)
