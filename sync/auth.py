"""Tokens per account with msal: client secret, username/password or device code, cached on disk.

Each account has one MSAL token cache, persisted in the state directory: encrypted with the
project key, written atomically with 0600 permissions and locked against a second process, so
a restart needs no new login (only deleting the cache does). MSAL is synchronous; callers on the
event loop use ``AccountAuth.token_source`` which runs it in a worker thread and keeps the
current access token in memory until shortly before it expires.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import httpx
import msal

from .config import AccountConfig
from .errors import NeedsHumanError, TransientAuthError

__all__ = ["AADSTS_HINTS", "AccountAuth", "AuthSettings", "Cipher", "DeviceLogin", "explain_aadsts"]

log = logging.getLogger(__name__)

KNOWN_AUTHORITY_HOSTS = {
    "login.microsoftonline.com", "login.microsoftonline.us", "login.chinacloudapi.cn",
    "login.microsoftonline.de", "login.windows.net", "login.microsoft.com", "sts.windows.net",
}
REFRESH_SKEW = 300.0  # seconds before expiry at which a token is renewed


class Cipher(Protocol):
    def encrypt_bytes(self, data: bytes) -> bytes: ...
    def decrypt_bytes(self, data: bytes) -> bytes: ...


# AADSTS code -> what the operator should do. Needs-human codes stop the account until fixed.
AADSTS_HINTS: dict[int, str] = {
    7000215: "the client secret is wrong: EncryptedSecret must hold the secret's Value, not its Secret ID. "
             "Copy the Value from Certificates & secrets and run `presence-sync encrypt-secret` again",
    7000222: "the client secret has expired: create a new secret on the app registration and run "
             "`presence-sync encrypt-secret` with its Value",
    65001: "the app has no consent for the permissions it asks for: an administrator must grant admin consent "
           "on the app registration's API permissions page",
    50076: "the service account needs multi-factor authentication: exclude it from MFA with a Conditional "
           "Access exclusion, as a service account must log in without a human",
    50126: "the username or password is wrong: check Username and EncryptedPassword for this account",
    700016: "the ClientId is not an app registration in this tenant: check ClientId and TenantId",
    90002: "the TenantId does not name a tenant: copy the Directory (tenant) ID from the app registration",
    7000218: "the app does not allow public client flows: set 'Allow public client flows' to Yes on its "
             "Authentication page",
    50034: "the username does not exist in this tenant",
    700082: "the refresh token has expired: log in again with `presence-sync login --account <id>`",
    70008: "the refresh token has expired or was revoked: log in again with `presence-sync login --account <id>`",
    50173: "the refresh token was revoked (password changed?): log in again",
}


def explain_aadsts(result: dict[str, Any]) -> tuple[int | None, str]:
    """(AADSTS code, operator message) for an MSAL error result, without any secret."""
    codes = result.get("error_codes") or []
    code = int(codes[0]) if codes else None
    desc = str(result.get("error_description") or "").split("\r\n", 1)[0].split("\n", 1)[0]
    hint = AADSTS_HINTS.get(code or -1)
    text = f"{result.get('error', 'error')}: {desc}" if desc else str(result.get("error", "error"))
    return code, f"{text} -> {hint}" if hint else text


@dataclass(frozen=True)
class AuthSettings:
    account_id: str
    tenant_id: str
    client_id: str
    mode: str  # "secret" | "password" | "device"
    authority_host: str
    graph_url: str
    secret: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_account(cls, acc: AccountConfig) -> AuthSettings:
        return cls(account_id=acc.id, tenant_id=acc.tenant_id, client_id=acc.client_id, mode=acc.auth,
                   authority_host=acc.authority_host, graph_url=acc.graph_url,
                   secret=acc.secret_value(), username=acc.username, password=acc.password_value())


class _PortFixingHttp:
    """MSAL builds the userrealm URL from the authority's host name without its port; put it back."""

    def __init__(self, client: httpx.Client, authority_netloc: str) -> None:
        self._client = client
        self._netloc = authority_netloc
        self._host = authority_netloc.split(":")[0]

    def _fix(self, url: str) -> str:
        parts = urlsplit(url)
        if parts.netloc == self._host and self._netloc != self._host:
            return urlunsplit(parts._replace(netloc=self._netloc))
        return url

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self._client.get(self._fix(url), **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self._client.post(self._fix(url), **kw)

    def close(self) -> None:
        self._client.close()


class PersistentCache(msal.SerializableTokenCache):
    """MSAL's cache, encrypted on disk, read and written under an exclusive file lock."""

    def __init__(self, path: Path, cipher: Cipher) -> None:
        super().__init__()
        self.path = path
        self.cipher = cipher
        self._lock_path = path.with_suffix(path.suffix + ".lock")

    def _locked(self) -> Any:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def load(self) -> None:
        fd = self._locked()
        try:
            if self.path.exists():
                try:
                    self.deserialize(self.cipher.decrypt_bytes(self.path.read_bytes()).decode())
                except Exception as exc:  # a cache we can't read is a cache we don't have; keep it for a look
                    aside = self.path.with_name(f"{self.path.name}.damaged-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")
                    os.replace(self.path, aside)
                    log.warning("token cache %s could not be read (%s): moved to %s; the account signs in again "
                                "(delegated accounts without a password: presence-sync login)",
                                self.path.name, type(exc).__name__, aside.name)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def save(self) -> None:
        if not getattr(self, "has_state_changed", True):
            return
        fd = self._locked()
        try:
            data = self.cipher.encrypt_bytes(self.serialize().encode())
            tmp = self.path.with_suffix(".tmp")
            wfd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(wfd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
            self.has_state_changed = False
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


@dataclass
class DeviceLogin:
    """A pending device-code login: what the operator must do, and the flow MSAL polls."""

    verification_uri: str
    user_code: str
    message: str
    flow: dict[str, Any] = field(repr=False)


class AccountAuth:
    """Tokens for one account, for Graph and for the SharePoint site."""

    def __init__(self, settings: AuthSettings, state_dir: Path, cipher: Cipher,
                 http_client: httpx.Client) -> None:
        self.s = settings
        self.cache = PersistentCache(state_dir / "tokens" / f"{_safe(settings.account_id)}.cache", cipher)
        self.cache.load()
        authority = f"{settings.authority_host.rstrip('/')}/{settings.tenant_id}"
        netloc = urlsplit(settings.authority_host).netloc
        host = netloc.split(":")[0].lower()
        common: dict[str, Any] = {
            "authority": authority,
            "token_cache": self.cache,
            "http_client": _PortFixingHttp(http_client, netloc),
            "instance_discovery": host in KNOWN_AUTHORITY_HOSTS and ":" not in netloc,
        }
        self._lock = threading.Lock()
        self._memo: dict[str, tuple[str, float]] = {}
        self.pending_login: DeviceLogin | None = None
        self.token_expires_at: float | None = None  # Unix time the last access token acquired expires (metrics)
        try:
            if settings.mode == "secret":
                self.app: msal.ClientApplication = msal.ConfidentialClientApplication(
                    settings.client_id, client_credential=settings.secret, **common)
            else:
                self.app = msal.PublicClientApplication(settings.client_id, **common)
        except ValueError as exc:  # MSAL could not read the authority's OpenID configuration
            raise NeedsHumanError(f"account '{settings.account_id}': the authority {authority} did not answer "
                                  f"with an OpenID configuration ({exc}); check TenantId and AuthorityHost") from exc
        except httpx.HTTPError as exc:
            raise TransientAuthError(f"account '{settings.account_id}': cannot reach {settings.authority_host}: "
                                     f"{type(exc).__name__}") from exc

    # Scopes --------------------------------------------------------------------------------
    def graph_scopes(self) -> list[str]:
        return [self.s.graph_url.rstrip("/") + "/.default"]

    @staticmethod
    def site_scopes(site_url: str) -> list[str]:
        p = urlsplit(site_url)
        return [f"{p.scheme}://{p.netloc}/.default"]

    # Acquisition (sync; call through token_source from async code) --------------------------
    def try_acquire(self, scopes: list[str], force: bool = False) -> dict[str, Any]:
        """MSAL's answer as it is: a token, or an error result with its AADSTS codes (see ``explain_aadsts``).

        ``force`` skips the cached access token: a secret or password account asks with its credential, a device
        account with its refresh token."""
        with self._lock:
            try:
                return self._acquire(scopes, force)
            except httpx.HTTPError as exc:
                raise TransientAuthError(f"account '{self.s.account_id}': token request failed: "
                                         f"{type(exc).__name__}") from exc
            finally:
                self.cache.save()

    def acquire(self, scopes: list[str], force: bool = False) -> dict[str, Any]:
        result = self.try_acquire(scopes, force)
        if "access_token" in result:
            self.token_expires_at = time.time() + float(result.get("expires_in") or 0)
            return result
        code, message = explain_aadsts(result)
        where = f"account '{self.s.account_id}' (tenant {self.s.tenant_id})"
        if result.get("error") in ("temporarily_unavailable", "server_error") or str(
                result.get("error_description", "")).startswith("HTTP Error: 5"):
            raise TransientAuthError(f"{where}: {message}")
        raise NeedsHumanError(f"{where}: {message}")

    def _acquire(self, scopes: list[str], force: bool) -> dict[str, Any]:
        app = self.app
        if isinstance(app, msal.ConfidentialClientApplication):
            if force:
                app.remove_tokens_for_client()
            return app.acquire_token_for_client(scopes) or {}
        accounts = app.get_accounts(username=self.s.username) if self.s.username else app.get_accounts()
        # ``force`` means "from the credential, not the cache": for a password account that is the password, so a
        # password changed in the configuration is tried now, not after the cached refresh token runs out.
        if accounts and not (force and self.s.mode == "password"):
            res = app.acquire_token_silent_with_error(scopes, accounts[0], force_refresh=force)
            if res and "access_token" in res:
                return res
            if res and self.s.mode == "device":
                return res
        if self.s.mode == "password":
            assert isinstance(app, msal.PublicClientApplication)
            with warnings.catch_warnings():  # the username/password flow is deprecated upstream; it is the
                warnings.simplefilter("ignore", DeprecationWarning)  # seed's supported mode, so we keep it
                return app.acquire_token_by_username_password(self.s.username or "", self.s.password or "",
                                                              scopes)
        return {"error": "login_required", "error_description": "no cached login for this account; run "
                f"`presence-sync login --account {self.s.account_id}`"}

    def forget_login(self) -> None:
        """Drop a delegated login that no longer works (e.g. a revoked refresh token), so a new one is asked for."""
        with self._lock:
            for account in self.app.get_accounts():
                self.app.remove_account(account)
            self.cache.save()
        self._memo.clear()

    def has_login(self) -> bool:
        return self.s.mode != "device" or bool(self.app.get_accounts())

    # Device code ------------------------------------------------------------------------------
    def begin_device_login(self) -> DeviceLogin:
        assert isinstance(self.app, msal.PublicClientApplication)
        flow = self.app.initiate_device_flow(scopes=self.graph_scopes())
        if "user_code" not in flow:
            _, message = explain_aadsts(flow)
            raise NeedsHumanError(f"account '{self.s.account_id}': device login could not start: {message}")
        self.pending_login = DeviceLogin(flow["verification_uri"], flow["user_code"], flow.get("message", ""), flow)
        return self.pending_login

    def finish_device_login(self, login: DeviceLogin, should_stop: Callable[[], bool] = lambda: False) -> None:
        """Block until the operator approves the code (or it expires / should_stop says so)."""
        assert isinstance(self.app, msal.PublicClientApplication)
        login.flow["expires_at"] = min(float(login.flow.get("expires_at", time.time() + 900)), time.time() + 900)
        result = self.app.acquire_token_by_device_flow(login.flow, exit_condition=lambda flow: should_stop())
        self.cache.save()
        self.pending_login = None
        if "access_token" not in result:
            _, message = explain_aadsts(result)
            raise NeedsHumanError(f"account '{self.s.account_id}': device login failed: {message}")

    # Async side -------------------------------------------------------------------------------
    def token_source(self, scopes: list[str]) -> Callable[[bool], Any]:
        """``async (force_refresh) -> access token`` for the Graph client, memoised until near expiry."""
        key = " ".join(scopes)

        async def get(force: bool) -> str:
            if not force:
                memo = self._memo.get(key)
                if memo and memo[1] - REFRESH_SKEW > time.time():
                    return memo[0]
            res = await asyncio.to_thread(self.acquire, scopes, force)
            self._memo[key] = (res["access_token"], time.time() + float(res.get("expires_in", 3600)))
            return str(res["access_token"])
        return get

    def sync_token_response(self, scopes: list[str]) -> SiteToken:
        """A callback for office365's ``with_access_token``; ``invalidate()`` forces a fresh token next time."""
        return SiteToken(self, scopes)


class SiteToken:
    """office365's token callback: a dict with the token; after a 401, the next call skips MSAL's cache."""

    def __init__(self, auth: AccountAuth, scopes: list[str]) -> None:
        self._auth = auth
        self._scopes = scopes
        self._force = False

    def invalidate(self) -> None:
        self._force = True

    def __call__(self) -> dict[str, Any]:
        force, self._force = self._force, False
        res = self._auth.acquire(self._scopes, force)
        return {"access_token": res["access_token"], "token_type": "Bearer",
                "expires_in": max(60, int(res.get("expires_in", 3600)) - int(REFRESH_SKEW))}

def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)

