"""The ``presence-sync`` command line: parse options, build Settings, call one library function, map errors
to exit codes (0 ok, 1 partial failure, 2 configuration or usage error, 3 an account needs a human).

    common.py   the app, consoles, logging, shared options, settings loading, error exits
    job.py      run, validate
    data.py     export, report
    account.py  login, doctor, encrypt-secret
    tools.py    emulator, bench, demo
    replicas.py status (the replicas sharing a PostgreSQL store)
"""

from __future__ import annotations

import sys

from ..errors import EXIT_OK
from .common import app

# Each module registers its commands on the app; this order is the order `presence-sync --help` lists them in.
# isort: off
from . import job, data, account, tools, replicas  # noqa: F401, E402
# isort: on

__all__ = ["app", "main"]


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(EXIT_OK)
