"""Configuration: config.xml + .env + environment + command-line flags -> one frozen ``Settings``.

    xmldoc.py    config.xml read safely (defusedxml, no DTDs), with line numbers; finds <MsGraphPresenceSource>
    accounts.py  each <Account> -> AccountConfig, every problem collected (GUIDs, auth mode, secrets)
    load.py      the layering (flags > environment > .env > config.xml > defaults) -> load_settings()
    settings.py  the resolved, frozen data: Settings, AccountConfig, WriteBackColumns, Secret, clouds

The rest of ``sync`` imports only the names below. Nothing here talks to the network.
"""

from __future__ import annotations

from .load import MAX_CONFIG_BYTES, load_settings
from .settings import (
    CSV_ENCODINGS,
    DEFAULT_AUTHORITY_HOST,
    DEFAULT_GRAPH_URL,
    NATIONAL_CLOUDS,
    AccountConfig,
    Cloud,
    ReportsTarget,
    Secret,
    Settings,
    WriteBackColumns,
    csv_encoding_problem,
    default_state_dir,
    env_name,
)

__all__ = [
    "CSV_ENCODINGS",
    "DEFAULT_AUTHORITY_HOST",
    "DEFAULT_GRAPH_URL",
    "MAX_CONFIG_BYTES",
    "NATIONAL_CLOUDS",
    "AccountConfig",
    "Cloud",
    "ReportsTarget",
    "Secret",
    "Settings",
    "WriteBackColumns",
    "csv_encoding_problem",
    "default_state_dir",
    "env_name",
    "load_settings",
]
