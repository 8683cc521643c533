"""Entra ID v2.0 as MSAL Python needs it: discovery, user realm, device code and the token endpoint.

Authority segments: a tenant GUID, any of its domains, its short name, or ``common`` /
``organizations``. On the latter two the tenant is the one owning the verified domain of the
user's UPN (ROPC, device-code approval), or of the refresh token; client credentials need a
tenant (AADSTS50059). Grants: client_credentials (secret in the body or HTTP Basic), device_code,
password (ROPC) and refresh_token.
"""

from __future__ import annotations

import base64
import hashlib
import math
import time
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from ..model.tenant import App, Tenant
from ..responses import json_response
from ..state import EmulatorState
from . import devicecode
from .wire import (
    AadError,
    aad_error,
    b64url,
    client_info,
    id_token,
    origin,
    parse_form,
    tenant_by_domain,
    tenant_for_segment,
)

__all__ = ["audience_of", "routes"]

OIDC_SCOPES = frozenset({"openid", "profile", "offline_access", "email"})
GRAPH = "https://graph.microsoft.com"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def audience_of(scopes: list[str]) -> str:
    """Resource of the first non-OIDC scope: ``scheme://host[:port]`` (bare names mean Graph)."""
    for scope in scopes:
        if scope.lower() in OIDC_SCOPES:
            continue
        if "://" in scope:
            u = urlsplit(scope)
            return f"{u.scheme}://{u.netloc}".lower()
        if "/" in scope:
            return scope.rsplit("/", 1)[0].lower()
        return GRAPH
    return GRAPH


def _st(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


# --- discovery ---------------------------------------------------------------------------------------


def _openid_config(base: str, segment: str, tenant: Tenant | None) -> dict[str, Any]:
    tid = tenant.tenant_id if tenant else segment.lower()
    issuer_tid = tenant.tenant_id if tenant else "{tenantid}"
    a = f"{base}/{tid}"
    return {
        "token_endpoint": f"{a}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": f"{a}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token", "password",
                                  DEVICE_GRANT],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/{issuer_tid}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base}/oidc/userinfo",
        "authorization_endpoint": f"{a}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{a}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{a}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name",
                             "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce",
                             "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": f"{a}/kerberos",
        "tenant_region_scope": "EU",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": urlsplit(base).netloc,
        "rbac_url": "https://pas.windows.net",
    }


async def openid_configuration(request: Request) -> Response:
    state = _st(request)
    state.stats.count("identity.discovery")
    await request.body()
    segment = request.path_params["tenant"]
    try:
        tenant = tenant_for_segment(state.world, segment)
    except AadError as exc:
        return aad_error(exc, origin(request))
    return json_response(_openid_config(origin(request), segment, tenant),
                         headers={"Cache-Control": "max-age=86400, private"})


async def keys(request: Request) -> Response:
    """Tokens here are opaque and id_tokens unsigned, so the key set is empty."""
    await request.body()
    return json_response({"keys": []}, headers={"Cache-Control": "max-age=86400, private"})


async def instance_discovery(request: Request) -> Response:
    state = _st(request)
    state.stats.count("identity.discovery")
    await request.body()
    base = origin(request)
    host = urlsplit(base).netloc
    path = urlsplit(request.query_params.get("authorization_endpoint", "")).path.strip("/")
    segment = path.split("/")[0] if path else "common"
    return json_response({
        "tenant_discovery_endpoint": f"{base}/{segment}/v2.0/.well-known/openid-configuration",
        "api-version": "1.1",
        "metadata": [{"preferred_network": host, "preferred_cache": host, "aliases": [host]}],
    }, headers={"Cache-Control": "max-age=86400, private"})


async def userrealm(request: Request) -> Response:
    """ROPC asks this first; ``Managed`` sends MSAL on to the plain password grant."""
    state = _st(request)
    state.stats.count("identity.userrealm")
    await request.body()
    user = unquote(request.path_params["user"])
    tenant = tenant_by_domain(state.world, user)
    if tenant is None:
        return json_response({"ver": "1.0", "account_type": "Unknown", "cloud_instance_name": "microsoftonline.com"})
    return json_response({
        "ver": "1.0", "account_type": "Managed", "domain_name": user.rpartition("@")[2].lower(),
        "cloud_instance_name": "microsoftonline.com", "cloud_audience_urn": "urn:federation:MicrosoftOnline",
    })


async def error_page(request: Request) -> Response:
    await request.body()
    code = request.query_params.get("code", "")
    return PlainTextResponse(f"AADSTS{code}: error code of the presence-sync local tenant (see "
                             f"https://login.microsoftonline.com/error?code={code} for Microsoft's text).")


# --- token endpoint ------------------------------------------------------------------------------------


def _client_credentials_from(request: Request, form: dict[str, str]) -> tuple[str, str | None]:
    """client_id and secret from the body, or from HTTP Basic (RFC 6749 2.3.1)."""
    client_id, secret = form.get("client_id", ""), form.get("client_secret")
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            user, _, pw = base64.b64decode(auth[6:].strip()).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            user, pw = "", ""
        client_id = client_id or unquote(user.replace("+", " "))
        secret = secret if secret is not None else unquote(pw.replace("+", " "))
    return client_id.strip().lower(), secret


def _check_secret(app: App, secret: str) -> None:
    if app.client_secret is None or secret != app.client_secret:
        raise AadError(7000215, client_id=app.client_id)  # also when the secret's ID was pasted
    if app.secret_expired:
        raise AadError(7000222, client_id=app.client_id)


def _app_in(tenant: Tenant, client_id: str) -> App:
    app = tenant.app(client_id)
    if app is None:
        raise AadError(700016, client_id=client_id, tenant=tenant.tenant_id)
    return app


def _public_client_ok(app: App, secret: str | None) -> None:
    """User flows: confidential callers prove their secret; others need public client flows allowed."""
    if secret:
        _check_secret(app, secret)
    elif not app.allow_public_client_flows:
        raise AadError(7000218)


def _delegated(app: App, scopes: list[str]) -> frozenset[str]:
    """Delegated permissions a consented app gets for ``scopes``; AADSTS65001 when consent is missing."""
    if not app.admin_consented:
        raise AadError(65001, client_id=app.client_id, app_name=app.display_name)
    have = {p.lower(): p for p in app.delegated_permissions}
    granted: set[str] = set()
    for scope in scopes:
        if scope.lower() in OIDC_SCOPES:
            continue
        name = scope.rsplit("/", 1)[-1]
        if name == ".default":
            granted.update(app.delegated_permissions)
        elif name.lower() in have:
            granted.add(have[name.lower()])
        else:
            raise AadError(65001, client_id=app.client_id, app_name=app.display_name)
    return frozenset(granted)


def _user_reply(state: EmulatorState, base: str, tenant: Tenant, app: App, upn: str,
                scopes: list[str]) -> Response:
    audience = audience_of(scopes)
    perms = _delegated(app, scopes)
    tid = tenant.tenant_id
    user = tenant.user_by_upn(upn)
    uid = user.id if user else str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tid}/{upn.lower()}"))
    lifetime = max(1, math.ceil(state.limits.token_lifetime))
    at = state.tokens.issue_access(tenant_id=tid, client_id=app.client_id, permissions=perms,
                                   audience=audience, user_upn=user.user_principal_name if user else upn,
                                   scopes=tuple(scopes))
    now = int(time.time())
    body: dict[str, Any] = {
        "token_type": "Bearer",
        "scope": " ".join(s for s in scopes if s.lower() != "offline_access"),
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": at.token,
        "client_info": client_info(uid, tid),
    }
    if "offline_access" in (s.lower() for s in scopes):
        body["refresh_token"] = state.tokens.issue_refresh(tenant_id=tid, client_id=app.client_id,
                                                           user_upn=at.user_upn or upn).token
    if "openid" in (s.lower() for s in scopes):
        body["id_token"] = id_token({
            "aud": app.client_id, "iss": f"{base}/{tid}/v2.0", "iat": now, "nbf": now, "exp": now + 3600,
            "name": user.display_name if user else upn, "oid": uid, "preferred_username": at.user_upn,
            "sub": b64url(hashlib.sha256(f"{uid}/{app.client_id}".encode()).digest()), "tid": tid,
            "uti": b64url(uuid.uuid4().bytes), "ver": "2.0",
        })
    return json_response(body, headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})


def _client_credentials(state: EmulatorState, tenant: Tenant | None, form: dict[str, str], client_id: str,
                        secret: str | None) -> Response:
    if tenant is None:
        raise AadError(50059)
    app = _app_in(tenant, client_id)
    if not secret:
        raise AadError(7000218)
    _check_secret(app, secret)
    scopes = form.get("scope", "").split()
    if len(scopes) != 1 or not scopes[0].endswith("/.default"):
        raise AadError(1002012, scope=form.get("scope", ""))
    lifetime = max(1, math.ceil(state.limits.token_lifetime))
    at = state.tokens.issue_access(
        tenant_id=tenant.tenant_id, client_id=app.client_id,
        permissions=frozenset(app.application_permissions) if app.admin_consented else frozenset(),
        audience=audience_of(scopes), via_secret=True, scopes=tuple(scopes))
    return json_response({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
                          "access_token": at.token},
                         headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})


def _password(state: EmulatorState, base: str, tenant: Tenant | None, form: dict[str, str], client_id: str,
              secret: str | None) -> Response:
    upn, password = form.get("username", "").strip(), form.get("password")
    for name, value in (("username", upn), ("password", password), ("scope", form.get("scope"))):
        if not value:
            raise AadError(900144, param=name)
    assert password is not None
    if tenant is None:
        tenant = tenant_by_domain(state.world, upn)
        if tenant is None:
            raise AadError(50034, tenant="common")
    app = _app_in(tenant, client_id)
    _public_client_ok(app, secret)
    account = tenant.service_account(upn)
    if account is None:
        if tenant.user_by_upn(upn) is None:
            raise AadError(50034, tenant=tenant.tenant_id)
        raise AadError(50126)  # a directory user without a password we know
    if account.password != password:
        raise AadError(50126)
    scopes = form["scope"].split()
    if account.mfa_required:
        aud = audience_of(scopes)
        exc = AadError(50076, resource="00000003-0000-0000-c000-000000000000" if aud == GRAPH else aud)
        exc.extra = {"suberror": "basic_action",
                     "claims": '{"access_token":{"capolids":{"essential":true,"values":["'
                               + str(uuid.uuid5(uuid.NAMESPACE_URL, tenant.tenant_id)) + '"]}}}'}
        raise exc
    return _user_reply(state, base, tenant, app, account.upn, scopes)


def _device_code(state: EmulatorState, base: str, tenant: Tenant | None, form: dict[str, str], client_id: str,
                 secret: str | None) -> Response:
    code = form.get("device_code") or form.get("code")
    if not code:
        raise AadError(900144, param="device_code")
    flow = state.device_codes.get(code)
    if flow is not None and flow.client_id == client_id:
        owner = state.world.tenants[flow.tenant_id] if flow.tenant_id else None
        for t in [owner] if owner else [t for t in state.world.tenants.values() if t.app(client_id)]:
            _public_client_ok(_app_in(t, client_id), secret)
    flow = devicecode.poll(state, code, client_id)
    assert flow.tenant_id is not None and flow.upn is not None
    if tenant is not None and tenant.tenant_id != flow.tenant_id:
        raise AadError(70018)
    owner = state.world.tenants[flow.tenant_id]
    return _user_reply(state, base, owner, _app_in(owner, client_id), flow.upn, flow.scopes)


def _refresh(state: EmulatorState, base: str, tenant: Tenant | None, form: dict[str, str], client_id: str,
             secret: str | None) -> Response:
    token = form.get("refresh_token")
    if not token:
        raise AadError(900144, param="refresh_token")
    info = state.tokens.redeem_refresh(token)
    if info is None or info.client_id != client_id or (tenant is not None and tenant.tenant_id != info.tenant_id):
        raise AadError(70008)
    owner = state.world.tenants.get(info.tenant_id)
    if owner is None:
        raise AadError(70008)
    app = _app_in(owner, client_id)
    if secret:
        _check_secret(app, secret)
    if owner.service_account(info.user_upn) is None and owner.user_by_upn(info.user_upn) is None:
        raise AadError(50034, tenant=owner.tenant_id)
    scopes = form.get("scope", "").split() or [f"{GRAPH}/.default", "openid", "profile", "offline_access"]
    return _user_reply(state, base, owner, app, info.user_upn, scopes)


async def token(request: Request) -> Response:
    """``POST /{tenant}/oauth2/v2.0/token``."""
    state = _st(request)
    state.stats.count("identity.token")
    form = await parse_form(request)
    base = origin(request)
    try:
        tenant = tenant_for_segment(state.world, request.path_params["tenant"])
        grant = form.get("grant_type", "")
        client_id, secret = _client_credentials_from(request, form)
        if not grant:
            raise AadError(900144, param="grant_type")
        if not client_id:
            raise AadError(900144, param="client_id")
        if grant == "client_credentials":
            return _client_credentials(state, tenant, form, client_id, secret)
        if grant == "password":
            return _password(state, base, tenant, form, client_id, secret)
        if grant == DEVICE_GRANT:
            return _device_code(state, base, tenant, form, client_id, secret)
        if grant == "refresh_token":
            return _refresh(state, base, tenant, form, client_id, secret)
        raise AadError(70003, grant_type=grant)
    except AadError as exc:
        return aad_error(exc, base)


def routes(state: EmulatorState) -> list[BaseRoute]:
    return [
        Route("/common/discovery/instance", instance_discovery, methods=["GET"]),
        Route("/common/userrealm/{user:path}", userrealm, methods=["GET"]),
        Route("/error", error_page, methods=["GET"]),
        Route("/{tenant}/v2.0/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
        Route("/{tenant}/.well-known/openid-configuration", openid_configuration, methods=["GET"]),
        Route("/{tenant}/discovery/v2.0/keys", keys, methods=["GET"]),
        Route("/{tenant}/oauth2/v2.0/token", token, methods=["POST"]),
        *devicecode.routes(state),
    ]
