"""The job as a library call: Settings in, cycles run, exit code out. The CLI is a thin layer on top."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from .config import AccountConfig, Settings
from .errors import ConfigError, LeaseLost, NeedsHumanError, StoreError, TransientAuthError, UsageError
from .http import RequestBudget, TrustConfig, note_response
from .lock import state_lock
from .loops import Cadence
from .loops.roster import DirectoryProgress
from .memory import tune_allocator
from .models import CycleResult
from .observe.watch import observing
from .outputs.folder import Outputs
from .outputs.history import catch_up_history
from .quota import ResourceUnitBudget, RetryAfterGate
from .replicas.coordinator import Coordinator
from .replicas.leases import LeaseBook
from .runtime import AccountRuntime, RuntimeOptions
from .scheduler import Scheduler
from .secrets import KeyStore
from .store import Store

__all__ = ["JobReport", "account_runtimes", "run_job"]

log = logging.getLogger(__name__)


@dataclass
class JobReport:
    exit_code: int
    cycles: int
    outputs: Outputs


def runtime_options(settings: Settings, progress: DirectoryProgress | None = None) -> RuntimeOptions:
    return RuntimeOptions(
        state_dir=settings.state_dir,
        trust=TrustConfig(settings.ca_bundle),
        presence_limit=settings.presence_budget_requests,
        presence_window=settings.presence_budget_window,
        cadence=Cadence(roster_interval=settings.writeback_interval, domains_interval=settings.domains_refresh,
                        writeback_interval=settings.writeback_interval,
                        # A running job retries a failing chunk only until its next tick is due (the presence
                        # loop's own bound), and never past this; a single --once run is more patient.
                        presence_deadline=30.0 if settings.once else max(2 * settings.interval, 5.0)),
        columns=settings.writeback_columns,
        dry_run=settings.dry_run,
        roster_csv=settings.roster_csv,
        interval=settings.interval,
        sharepoint_ru_per_minute=settings.writeback_quota,
        progress=progress,
        csv_encoding=settings.csv_encoding,
    )


def sync_http_client(trust: TrustConfig) -> httpx.Client:
    """The synchronous client msal talks through (trusting the same CAs as everything else)."""
    return httpx.Client(verify=trust.ssl_context(), timeout=httpx.Timeout(30.0, connect=10.0), trust_env=False,
                        event_hooks={"response": [lambda r: note_response(r.request.url, r.status_code)]})


def build_runtimes(settings: Settings, accounts: Sequence[AccountConfig], store: Store,
                   sync_http: httpx.Client, progress: DirectoryProgress | None = None,
                   errors: dict[str, str] | None = None) -> tuple[list[AccountRuntime], list[str]]:
    """One runtime per account; accounts whose setup fails are reported, the others still run."""
    opts = runtime_options(settings, progress)
    cipher = KeyStore.for_paths(settings.state_dir, settings.key_file)
    runtimes: list[AccountRuntime] = []
    failed: list[str] = []
    budgets: dict[tuple[str, str], RequestBudget] = {}
    quotas: dict[tuple[str, str], ResourceUnitBudget] = {}
    gates: dict[tuple[str, str], RetryAfterGate] = {}
    for acc in accounts:
        try:
            runtimes.append(AccountRuntime(acc, opts, store, cipher, sync_http, budgets, quotas, gates))
        except (NeedsHumanError, TransientAuthError) as exc:
            log.error("%s", exc)
            failed.append(acc.id)
            if errors is not None:
                errors[acc.id] = str(exc)
    return runtimes, failed


@asynccontextmanager
async def account_runtimes(settings: Settings, progress: DirectoryProgress | None = None,
                           errors: dict[str, str] | None = None
                           ) -> AsyncIterator[tuple[list[AccountRuntime], list[str]]]:
    """Check the accounts, open the store and the token client, build one runtime per active account; close
    everything afterwards. Yields the runtimes and the ids of accounts whose setup needs a human."""
    accounts = settings.active_accounts
    if not accounts:
        raise UsageError("no enabled account matches" + (f" --account {', '.join(settings.account_filter)}"
                         if settings.account_filter else " the configuration"))
    problems = settings.agent_list_problems()
    if problems:
        raise ConfigError(problems)
    settings.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    store = await asyncio.to_thread(Store, settings.store_location)
    if store.dialect != "sqlite":
        log.info("store: %s", store.where)
    sync_http = sync_http_client(TrustConfig(settings.ca_bundle))
    runtimes: list[AccountRuntime] = []
    try:
        runtimes, setup_failed = await asyncio.to_thread(build_runtimes, settings, accounts, store, sync_http,
                                                         progress, errors)
        yield runtimes, setup_failed
    finally:
        for rt in runtimes:
            await rt.aclose()
        sync_http.close()
        store.close()


async def run_job(settings: Settings, *, max_cycles: int | None = None, install_signals: bool = True,
                  on_cycle: Callable[[int, list[CycleResult]], None] | None = None,
                  run_for: float | None = None, progress: DirectoryProgress | None = None,
                  on_start: Callable[[Scheduler], None] | None = None,
                  on_validation: Callable[[], None] | None = None) -> JobReport:
    """Run every active account's loops until ``--once``/``max_cycles``/``run_for`` seconds or a signal.

    ``on_validation`` is called (from a worker thread) after validation.csv was rewritten; it must not block."""
    tune_allocator()
    # Several replicas (a PostgreSQL store, not --once): per-account files, whole-folder files built from them.
    shared = settings.store is not None and not settings.once
    outputs = Outputs(settings.out_dir, settings.csv_encoding, on_validation=on_validation,  # run --report's refresh
                      shared=shared, accounts=[a.id for a in settings.active_accounts])
    setup_errors: dict[str, str] = {}
    with state_lock(settings.state_dir):  # one run per state directory (exit 2 for a second one)
        async with account_runtimes(settings, progress, setup_errors) as (runtimes, setup_failed):
            if runtimes and not shared:  # a run killed between the store and the CSV left rows out of the history
                await asyncio.to_thread(catch_up_history, outputs.history_csv, runtimes[0].store,
                                        settings.csv_encoding)
            sched = Scheduler(runtimes, outputs, interval=settings.interval, once=settings.once,
                              max_cycles=max_cycles, on_cycle=on_cycle)
            if on_start is not None:
                on_start(sched)
            if run_for is not None:
                asyncio.get_running_loop().call_later(run_for, sched.request_stop)
            sched.needs_human.update(setup_failed)
            coordinator = _coordinator(settings, sched, runtimes)
            async with observing(settings, sched, setup_errors, coordinator):  # metrics, health, alerts (when asked for)
                if coordinator is None:
                    code = await _run_with_signals(sched, install_signals)
                else:
                    rounds = asyncio.ensure_future(coordinator.run(sched.stop))
                    leaving: list[asyncio.Task[None]] = []

                    def on_signal() -> None:  # hand the accounts over first, then stop
                        if not leaving:
                            leaving.append(asyncio.ensure_future(_leave(coordinator, sched)))

                    try:
                        code = await _run_with_signals(sched, install_signals, on_signal)
                    finally:
                        sched.request_stop()
                        await rounds
                        await coordinator.leave()  # SIGTERM: every account handed over at once
    with contextlib.suppress(OSError):
        outputs.flush()  # several replicas: the last ticks' rows into the whole-folder presence.csv
    return JobReport(code, sched.cycles, outputs)


def _coordinator(settings: Settings, sched: Scheduler, runtimes: Sequence[AccountRuntime]) -> Coordinator | None:
    """With a PostgreSQL store (and not --once), the accounts run only while this replica holds their leases."""
    if settings.once or not runtimes or runtimes[0].store.dialect != "postgresql" or settings.store is None:
        return None
    store = runtimes[0].store
    book = LeaseBook(settings.store.reveal(), ttl=settings.lease_ttl)

    starting: dict[str, asyncio.Task[None]] = {}

    async def begin(account: str) -> None:
        try:  # the last holder may have died between the store and its history CSVs
            await asyncio.to_thread(sched.outputs.catch_up, account, store)
        except LeaseLost:
            starting.pop(account, None)
            return  # gone again before it started
        except (OSError, StoreError) as exc:
            log.warning("account %s: presence_history.csv not caught up with the store: %s", account, exc)
        starting.pop(account, None)
        sched.start_account(account)

    async def take(account: str, token: int, until: float) -> None:
        store.forget(account)  # another replica may have written since this one last held it
        store.fence(account, book.id, token, until)
        # Off the lease round: a slow store (after an outage) must not make the round miss its renewals.
        starting[account] = asyncio.ensure_future(begin(account))

    async def drop(account: str, graceful: bool) -> None:
        if not graceful:
            store.unfence(account)  # lost: not one more write
        pending = starting.pop(account, None)
        if pending is not None:
            pending.cancel()
            await asyncio.gather(pending, return_exceptions=True)
        await sched.stop_account(account)
        store.unfence(account)

    sched.coordinated = True
    log.info("replica %s: sharing %d account(s) through %s (lease TTL %g s, renewed every %g s)", book.id,
             len(runtimes), store.where, settings.lease_ttl, settings.lease_renew)
    sched.outputs.may_write = store.check_lease  # no CSV row for an account whose lease may have passed on
    return Coordinator(book, [rt.account_id for rt in runtimes], take, drop, extend=store.extend,
                       renew_every=settings.lease_renew)


async def _leave(coordinator: Coordinator, sched: Scheduler) -> None:
    """SIGTERM with several replicas: every account handed over at once (each released as soon as its loops
    finished their writes), then the job stops."""
    try:
        await coordinator.hand_over_all()
    finally:
        sched.request_stop()


async def _run_with_signals(sched: Scheduler, install_signals: bool,
                            on_signal: Callable[[], None] | None = None) -> int:
    """The scheduler, with SIGINT/SIGTERM asking it to stop (every loop finishes its current writes), or
    calling ``on_signal``."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM) if install_signals else ()
    for sig in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal or sched.request_stop)
    try:
        return await sched.run()
    finally:
        for sig in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        sched.request_stop()
