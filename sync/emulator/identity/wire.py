"""Wire helpers of the Entra ID endpoints: AADSTS error replies, unsigned token artefacts, tenants.

Error bodies follow the v2.0 endpoint: ``error``, ``error_description`` starting with
``AADSTSnnnn:`` and ending with Trace ID / Correlation ID / Timestamp lines, ``error_codes``,
``timestamp``, ``trace_id``, ``correlation_id`` and ``error_uri``.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from ..model.tenant import App, Tenant, World
from ..responses import json_response

__all__ = [
    "MULTI_TENANT",
    "AadError",
    "aad_error",
    "apps_by_client",
    "b64url",
    "client_info",
    "id_token",
    "origin",
    "parse_form",
    "tenant_by_domain",
    "tenant_for_segment",
]

# Authority segments that name no single tenant; the tenant comes from the user (or the app).
MULTI_TENANT = frozenset({"common", "organizations"})

# Codes that make MSAL-based clients tell a human what to do.
MESSAGES: dict[int, tuple[int, str, str]] = {
    # code: (HTTP status, error, description template)
    7000215: (401, "invalid_client",
              "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
              "value, not the client secret ID, for a secret added to app '{client_id}'."),
    7000222: (401, "invalid_client",
              "The provided client secret keys for app '{client_id}' are expired. Visit the Azure portal to create "
              "new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials "
              "for added security: https://aka.ms/certCreds."),
    7000218: (401, "invalid_client",
              "The request body must contain the following parameter: 'client_assertion' or 'client_secret'."),
    50126: (400, "invalid_grant", "Error validating credentials due to invalid username or password."),
    50076: (400, "invalid_grant",
            "Due to a configuration change made by your administrator, or because you moved to a new location, "
            "you must use multi-factor authentication to access '{resource}'."),
    65001: (400, "invalid_grant",
            "The user or administrator has not consented to use the application with ID '{client_id}' named "
            "'{app_name}'. Send an interactive authorization request for this user and resource."),
    700016: (400, "unauthorized_client",
             "Application with identifier '{client_id}' was not found in the directory '{tenant}'. This can happen "
             "if the application has not been installed by the administrator of the tenant or consented to by any "
             "user in the tenant. You may have sent your authentication request to the wrong tenant."),
    90002: (400, "invalid_request",
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into "
            "the correct cloud. Check with your subscription administrator, this may happen if there are no "
            "active subscriptions for the tenant."),
    50034: (400, "invalid_grant",
            "The user account {{EUII Hidden}} does not exist in the '{tenant}' directory. To sign into this "
            "application, the account must be added to the directory."),
    70008: (400, "invalid_grant",
            "The provided authorization code or refresh token has expired due to inactivity. Send a new "
            "interactive authorization request for this user and resource."),
    700082: (400, "invalid_grant",
             "The refresh token has expired due to inactivity. The token was issued on {issued} and was inactive "
             "for 90.00:00:00."),
    70003: (400, "unsupported_grant_type", "The app requested an unsupported grant type '{grant_type}'."),
    900144: (400, "invalid_request", "The request body must contain the following parameter: '{param}'."),
    1002012: (400, "invalid_scope",
              "The provided value for scope {scope} is not valid. Client credential flows must have a scope value "
              "with /.default suffixed to the resource identifier (application ID URI)."),
    70011: (400, "invalid_scope",
            "The provided request must include a 'scope' input parameter. The provided value for the input "
            "parameter 'scope' isn't valid."),
    70016: (400, "authorization_pending", "OAuth 2.0 device flow error. Authorization is pending. Continue polling."),
    70018: (400, "bad_verification_code", "Invalid verification code. The device code presented was not recognized."),
    70019: (400, "expired_token", "Verification code expired."),
    70000: (400, "authorization_declined", "The user denied the authorization request."),
    54005: (400, "invalid_grant", "OAuth2 Authorization code was already redeemed, please retry with a new valid "
                                  "code or use an existing refresh token."),
    50059: (400, "invalid_request",
            "No tenant-identifying information found in either the request or implied by any provided "
            "credentials."),
}


class AadError(Exception):
    """Raised inside the identity handlers; turned into the JSON error reply by ``aad_error``."""

    def __init__(self, code: int, error: str | None = None, **fmt: Any) -> None:
        status, default_error, template = MESSAGES[code]
        super().__init__(f"AADSTS{code}")
        self.code = code
        self.status = status
        self.error = error or default_error
        self.text = template.format(**fmt)
        self.extra: dict[str, Any] = {"suberror": "consent_required"} if code == 65001 else {}


def aad_error(exc: AadError, base_url: str) -> Response:
    """The token endpoint's error reply for ``exc``."""
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    body: dict[str, Any] = {
        "error": exc.error,
        "error_description": f"AADSTS{exc.code}: {exc.text}\r\nTrace ID: {trace_id}\r\n"
                             f"Correlation ID: {correlation_id}\r\nTimestamp: {stamp}",
        "error_codes": [exc.code],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"{base_url}/error?code={exc.code}",
    }
    body.update(exc.extra)
    return json_response(body, exc.status, {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def client_info(user_id: str, tenant_id: str) -> str:
    """base64url ``{"uid","utid"}``: MSAL builds ``home_account_id`` = ``uid.utid`` from it."""
    return b64url(json.dumps({"uid": user_id, "utid": tenant_id}, separators=(",", ":")).encode())


def id_token(claims: dict[str, Any]) -> str:
    """An unsigned (``alg: none``) JWT: MSAL only decodes the id_token, it never checks a signature."""
    header = b64url(json.dumps({"typ": "JWT", "alg": "none"}, separators=(",", ":")).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    return f"{header}.{payload}."


def origin(request: Request) -> str:
    """``scheme://host:port`` as the client addressed us; every URL we hand out is built from it."""
    return f"{request.url.scheme}://{request.url.netloc}"


async def parse_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (first value of each field)."""
    from urllib.parse import parse_qs

    raw = await request.body()
    try:
        parsed = parse_qs(raw.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        return {}
    return {k: v[0] for k, v in parsed.items()}


def tenant_for_segment(world: World, segment: str) -> Tenant | None:
    """The tenant an authority path segment names (GUID, domain, short name); AADSTS90002 otherwise.

    ``common`` and ``organizations`` return None: the caller resolves the tenant later.
    """
    if segment.lower() in MULTI_TENANT:
        return None
    tenant = world.resolve_tenant(segment)
    if tenant is None:
        raise AadError(90002, tenant=segment)
    return tenant


def tenant_by_domain(world: World, upn: str) -> Tenant | None:
    """The tenant owning the verified domain of ``upn`` (what sign-in on /common and /organizations does)."""
    domain = upn.rpartition("@")[2].strip().lower()
    for t in world.tenants.values():
        for d in t.domains:
            if d.id.lower() == domain and d.is_verified:
                return t
    return None


def apps_by_client(world: World, client_id: str) -> list[tuple[Tenant, App]]:
    """Every tenant that registers ``client_id`` (apps are single-tenant in the fixtures)."""
    found = []
    for t in world.tenants.values():
        app = t.app(client_id)
        if app is not None:
            found.append((t, app))
    return found
