"""``presence-sync login``: a human logs a delegated account in once; the token cache keeps it logged in."""

from __future__ import annotations

from collections.abc import Callable

from .auth import AccountAuth, AuthSettings
from .config import Settings
from .errors import UsageError
from .http import TrustConfig
from .job import sync_http_client
from .secrets import KeyStore

__all__ = ["login_account"]


def login_account(settings: Settings, account_id: str, show: Callable[[str], None]) -> str:
    """Log in (device code) or check the credentials of one account; returns a one-line result."""
    matches = [a for a in settings.accounts if a.id.casefold() == account_id.casefold()]
    if not matches:
        known = ", ".join(a.id for a in settings.accounts) or "none"
        raise UsageError(f"no Account with Id '{account_id}' in the configuration (accounts: {known})")
    acc = matches[0]
    http = sync_http_client(TrustConfig(settings.ca_bundle))
    try:
        auth = AccountAuth(AuthSettings.from_account(acc), settings.state_dir,
                           KeyStore.for_paths(settings.state_dir, settings.key_file), http)
        if acc.auth == "device" and not auth.has_login():
            login = auth.begin_device_login()
            show(login.message or f"Open {login.verification_uri} and enter the code {login.user_code}")
            auth.finish_device_login(login)
        auth.acquire(auth.graph_scopes())
    finally:
        http.close()
    how = {"secret": "client secret", "password": "username and password", "device": "device login"}[acc.auth]
    return f"account '{acc.id}' (tenant {acc.tenant_id}): signed in with {how}; the token cache is in {settings.state_dir}"
