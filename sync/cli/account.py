"""`login`, `doctor` and `encrypt-secret`: what an operator does once per account."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer

from ..errors import SyncError, UsageError
from .common import (
    AccountOpt,
    CaOpt,
    ConfigOpt,
    StateOpt,
    _fail,
    _key_store,
    _settings,
    app,
    err,
    out,
)


@app.command()
def login(
    account: Annotated[str, typer.Option("--account", "-a", metavar="ID", help="The Account Id to log in.")],
    config: ConfigOpt = None,
    state_dir: StateOpt = None,
    ca_bundle: CaOpt = None,
) -> None:
    """Log a delegated account in once (device code); later runs are silent until the cache is deleted.

    Example: presence-sync login --account contoso.com
    """
    try:
        settings, _ = _settings(config, state_dir=state_dir, account_filter=[account], ca_bundle=ca_bundle)
        from ..login import login_account

        message = login_account(settings, account, show=lambda text: err.print(text, markup=False,
                                                                               highlight=False))
    except (SyncError, OSError) as exc:
        raise _fail(exc) from None
    out.print(message, highlight=False)


@app.command()
def doctor(config: ConfigOpt = None, account: AccountOpt = None, ca_bundle: CaOpt = None, state_dir: StateOpt = None,
           json_out: Annotated[bool, typer.Option("--json", help="Print the rows as JSON.")] = False) -> None:
    """Check each account (reachable, credential, permissions, domains, list, columns, presence, budget) and name
    the fix for what fails. Exit 0 nothing failed, 3 a person has to act, 2 configuration. Takes no lock.

    Example: presence-sync doctor --config config.xml --account contoso.com
    """
    try:
        settings, _ = _settings(config, state_dir=state_dir, account_filter=account, ca_bundle=ca_bundle)
        from ..doctor import run_doctor, show

        reports = run_doctor(settings)
    except (SyncError, OSError) as exc:
        raise _fail(exc) from None
    raise typer.Exit(show(out, reports, json_out))


@app.command("encrypt-secret")
def encrypt_secret(state_dir: StateOpt = None) -> None:
    """Read a client secret or password on stdin; print the value for EncryptedSecret / EncryptedPassword.

    The key lives in the state directory (created 0600 on first use) or in $PRESENCE_SYNC_KEY_FILE.
    Example: printf '%s' "$SECRET" | presence-sync encrypt-secret --state-dir /var/lib/presence-sync
    """
    try:
        if sys.stdin.isatty():
            value = getpass.getpass("secret (not echoed): ")
        else:
            value = sys.stdin.read()
            value = value[:-2] if value.endswith("\r\n") else value[:-1] if value.endswith("\n") else value
        if not value:
            raise UsageError("nothing to encrypt: stdin was empty.",
                             hint="Pipe the secret in, e.g. printf '%s' \"$SECRET\" | presence-sync encrypt-secret")
        token = _key_store(state_dir).encrypt(value)
    except (SyncError, OSError) as exc:
        raise _fail(exc) from None
    out.print(token, highlight=False, soft_wrap=True)
