"""``presence-sync bench``: the local tenant in its own process, two baselines, figures, targets and a report.

- ``tenant``: generate tenants and run the local tenant in a child process (``start_tenant``, ``TenantProcess``).
- ``baselines``: the same presence calls done the simplest way (``run_bare_httpx``) and the way the official
  msgraph-sdk is used (``run_msgraph_sdk``), measured per cycle in this process.
- ``report``: the targets (``targets_for``), the table (``render_table`` / ``render_report``) and the JSON file
  (``write_json``).
"""

from __future__ import annotations

from .baselines import BaselineResult, MsgraphSdkMissing, fetch_user_ids, run_bare_httpx, run_msgraph_sdk
from .report import (
    Target,
    machine_info,
    peak_rss_mb,
    render_report,
    render_table,
    targets_for,
    verdict,
    write_json,
)
from .tenant import TenantError, TenantProcess, cpu_seconds, start_tenant

__all__ = [
    "BaselineResult", "MsgraphSdkMissing", "Target", "TenantError", "TenantProcess", "cpu_seconds",
    "fetch_user_ids", "machine_info", "peak_rss_mb", "render_report", "render_table", "run_bare_httpx",
    "run_msgraph_sdk", "start_tenant", "targets_for", "verdict", "write_json",
]
