"""Opaque access and refresh tokens, bound to tenant, app, user, permissions, audience and expiry.

Tokens are random strings; what they mean lives here, in memory. Expiry uses real time
(clients decide when to refresh by their own clock), never the presence clock.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["AuthFailure", "TokenInfo", "TokenStore", "GRAPH_AUDIENCES"]

GRAPH_AUDIENCES = ("https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000")
REVOKED_KEPT = 10_000  # revoked access tokens remembered for ``identify``


@dataclass
class TokenInfo:
    token: str
    tenant_id: str
    client_id: str
    permissions: frozenset[str]
    audience: str  # resource the token was minted for, e.g. https://graph.microsoft.com
    expires_at: float
    user_upn: str | None = None  # None for app-only tokens
    via_secret: bool = False  # app-only token minted from a client secret
    scopes: tuple[str, ...] = ()

    @property
    def is_app_only(self) -> bool:
        return self.user_upn is None


@dataclass
class RefreshInfo:
    token: str
    tenant_id: str
    client_id: str
    user_upn: str
    family: str = field(default_factory=lambda: secrets.token_hex(8))


class AuthFailure(Exception):
    """Why a bearer token was refused; handlers turn it into 401 InvalidAuthenticationToken."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TokenStore:
    def __init__(self, lifetime: float = 3599.0, now: Callable[[], float] = time.time) -> None:
        self.lifetime = lifetime
        self._now = now
        self._access: dict[str, TokenInfo] = {}
        self._refresh: dict[str, RefreshInfo] = {}
        self._revoked: dict[str, TokenInfo] = {}  # the latest revoked access tokens: still say whose they were

    def issue_access(
        self,
        *,
        tenant_id: str,
        client_id: str,
        permissions: frozenset[str] | set[str],
        audience: str,
        user_upn: str | None = None,
        via_secret: bool = False,
        scopes: tuple[str, ...] = (),
    ) -> TokenInfo:
        info = TokenInfo(
            token="eyJ0eXAiOiJFTVUifQ." + secrets.token_urlsafe(32),
            tenant_id=tenant_id,
            client_id=client_id,
            permissions=frozenset(permissions),
            audience=audience.rstrip("/").lower(),
            expires_at=self._now() + self.lifetime,
            user_upn=user_upn,
            via_secret=via_secret,
            scopes=scopes,
        )
        self._access[info.token] = info
        return info

    def issue_refresh(self, *, tenant_id: str, client_id: str, user_upn: str) -> RefreshInfo:
        info = RefreshInfo(token="0.EMU." + secrets.token_urlsafe(48), tenant_id=tenant_id,
                           client_id=client_id, user_upn=user_upn)
        self._refresh[info.token] = info
        return info

    def redeem_refresh(self, token: str) -> RefreshInfo | None:
        """Refresh tokens rotate: the old one stays valid (as on Entra) until revoked."""
        return self._refresh.get(token)

    def validate(self, authorization: str | None) -> TokenInfo:
        """The token behind an ``Authorization`` header, or AuthFailure with Graph's wording."""
        if not authorization:
            raise AuthFailure("Access token is empty.")
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthFailure("Access token validation failure. Invalid audience.")
        info = self._access.get(token.strip())
        if info is None:
            raise AuthFailure("Access token validation failure. Invalid signature or revoked token.")
        if info.expires_at <= self._now():
            raise AuthFailure("Lifetime validation failed, the token is expired.")
        return info

    def identify(self, authorization: str | None) -> TokenInfo | None:
        """Whose request this is, from its bearer token even when that was revoked or has expired (a service
        can read the app and tenant of a token it no longer accepts); None for a token it never issued."""
        _, _, token = (authorization or "").partition(" ")
        token = token.strip()
        return self._access.get(token) or self._revoked.get(token)

    def revoke(self, tenant_id: str | None = None, client_id: str | None = None,
               include_refresh: bool = True) -> int:
        """Revoke matching access (and refresh) tokens; returns how many access tokens went."""
        def match(t: TokenInfo | RefreshInfo) -> bool:
            return (tenant_id is None or t.tenant_id == tenant_id) and (
                client_id is None or t.client_id == client_id)
        gone = [k for k, v in self._access.items() if match(v)]
        for k in gone:
            self._revoked[k] = self._access.pop(k)
        if len(self._revoked) > REVOKED_KEPT:
            for k in list(self._revoked)[:len(self._revoked) - REVOKED_KEPT]:
                del self._revoked[k]
        if include_refresh:
            for k in [k for k, v in self._refresh.items() if match(v)]:
                del self._refresh[k]
        return len(gone)

    def expire_all(self, tenant_id: str | None = None, client_id: str | None = None) -> int:
        """Make matching (default: all) access tokens expired now; refresh tokens keep working."""
        n = 0
        for info in self._access.values():
            if (tenant_id is None or info.tenant_id == tenant_id) and (
                    client_id is None or info.client_id == client_id):
                info.expires_at = self._now() - 1
                n += 1
        return n
