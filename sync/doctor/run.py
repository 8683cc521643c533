"""``presence-sync doctor``: every selected account's checks, then the budget rows across accounts."""

from __future__ import annotations

from collections import defaultdict

from ..config import Settings
from ..errors import ConfigError
from ..http import TrustConfig
from ..secrets import KeyStore
from .checks import AccountChecks
from .rules import SKIPPED, AccountReport, Budget, Row, budget_row

__all__ = ["run_doctor"]


def run_doctor(settings: Settings) -> list[AccountReport]:
    """One report per active account (``--account`` narrows them); ConfigError for an unusable configuration."""
    problems = settings.agent_list_problems()
    if problems:
        raise ConfigError(problems)
    from ..job import sync_http_client

    http = sync_http_client(TrustConfig(settings.ca_bundle))
    cipher = KeyStore.for_paths(settings.state_dir, settings.key_file)
    try:
        done = [(acc, AccountChecks(acc, settings.state_dir, cipher, http, settings.writeback_columns))
                for acc in settings.active_accounts]
        reports = [checks.run() for _, checks in done]
    finally:
        http.close()
    shared: dict[tuple[str, str], list[int]] = defaultdict(list)
    for acc, checks in done:
        if checks.agents is not None:
            shared[(acc.client_id.lower(), acc.tenant_id.lower())].append(checks.agents)
    for (acc, checks), report in zip(done, reports, strict=True):
        if checks.agents is None:
            report.rows.append(Row("budget", SKIPPED, "skipped: the Agent list's size is not known"))
            continue
        group = shared[(acc.client_id.lower(), acc.tenant_id.lower())]
        report.rows.append(budget_row(Budget(
            agents=checks.agents, shared_agents=sum(group), shared_accounts=len(group), interval=settings.interval,
            presence_limit=settings.presence_budget_requests, presence_window=settings.presence_budget_window,
            writeback_interval=settings.writeback_interval, ru_per_minute=settings.writeback_quota)))
    return reports
