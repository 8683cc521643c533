"""``presence-sync bench``: the local tenant in its own process, two baselines, figures, targets and a report.

- ``tenant``: generate tenants and run the local tenant in a child process (``start_tenant``, ``TenantProcess``).
- ``baselines``: the same presence calls done the simplest way (``run_bare_httpx``) and the way the official
  msgraph-sdk is used (``run_msgraph_sdk``), measured per cycle in this process.
- ``report``: the targets, the table and the JSON file.
"""

from __future__ import annotations
