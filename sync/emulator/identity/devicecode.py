"""The device-code flow: codes handed out, the /devicelogin page a human uses, and polling outcomes.

Flows live in ``state.device_codes`` (device_code -> DeviceFlow). Expiry runs on real time,
as clients poll in real time. The control API approves, declines, expires or slows codes down.
"""

from __future__ import annotations

import html
import secrets
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from ..model.tenant import Tenant
from ..responses import json_response
from ..state import EmulatorState
from .wire import (
    AadError,
    aad_error,
    apps_by_client,
    origin,
    parse_form,
    tenant_by_domain,
    tenant_for_segment,
)

__all__ = ["DeviceFlow", "approve", "decline", "expire", "find_by_user_code", "poll", "routes"]

_USER_CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


@dataclass
class DeviceFlow:
    device_code: str
    user_code: str
    client_id: str
    tenant_id: str | None  # None when started on /common or /organizations: set by the approving user
    scopes: list[str]
    created: float
    expires_at: float
    interval: int
    status: str = "pending"  # pending | approved | declined | redeemed
    upn: str | None = None
    slow_down: bool = False  # the next poll answers slow_down once

    def expired(self) -> bool:
        return self.status in ("pending", "approved") and time.time() >= self.expires_at

    def to_json(self) -> dict[str, Any]:
        return {
            "user_code": self.user_code,
            "client_id": self.client_id,
            "tenant": self.tenant_id,
            "scopes": self.scopes,
            "status": "expired" if self.expired() else self.status,
            "upn": self.upn,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created)),
            "expires_in": max(0, int(self.expires_at - time.time())),
        }


def _user_code() -> str:
    return "".join(secrets.choice(_USER_CODE_ALPHABET) for _ in range(9))


def find_by_user_code(state: EmulatorState, user_code: str) -> DeviceFlow | None:
    want = "".join(user_code.split()).replace("-", "").upper()
    for flow in state.device_codes.values():
        if flow.user_code == want:
            return flow
    return None


def _user_tenant(state: EmulatorState, flow: DeviceFlow, upn: str) -> Tenant:
    """The tenant of the approving user; the app must be registered there."""
    if flow.tenant_id is not None:
        tenant = state.world.tenants[flow.tenant_id]
        if tenant_by_domain(state.world, upn) is not tenant:
            raise ValueError(f"{upn} is not an account of tenant {tenant.name}")
    else:
        found = tenant_by_domain(state.world, upn)
        if found is None:
            raise ValueError(f"no tenant has the verified domain of {upn}")
        tenant = found
    if tenant.user_by_upn(upn) is None and tenant.service_account(upn) is None:
        raise ValueError(f"{upn} does not exist in tenant {tenant.name}")
    if tenant.app(flow.client_id) is None:
        raise ValueError(f"application {flow.client_id} is not registered in tenant {tenant.name}")
    return tenant


def approve(state: EmulatorState, flow: DeviceFlow, upn: str) -> None:
    """Sign ``upn`` in for ``flow`` (the user typed the code); ValueError says why not."""
    if flow.expired():
        raise ValueError("the code has expired")
    if flow.status != "pending":
        raise ValueError(f"the code is already {flow.status}")
    tenant = _user_tenant(state, flow, upn.strip())
    flow.tenant_id = tenant.tenant_id
    flow.upn = upn.strip()
    flow.status = "approved"


def decline(flow: DeviceFlow) -> None:
    if flow.status != "pending":
        raise ValueError(f"the code is already {flow.status}")
    flow.status = "declined"


def expire(flow: DeviceFlow) -> None:
    flow.expires_at = time.time() - 1


def poll(state: EmulatorState, device_code: str, client_id: str) -> DeviceFlow:
    """One token poll: the approved flow (now redeemed) or the AadError the client must see."""
    flow = state.device_codes.get(device_code)
    if flow is None or flow.client_id != client_id.lower():
        raise AadError(70018)
    if flow.expired():
        raise AadError(70019)
    if flow.status == "declined":
        raise AadError(70000)
    if flow.status == "redeemed":
        raise AadError(54005)
    if flow.slow_down:
        flow.slow_down = False
        raise AadError(70016, error="slow_down")
    if flow.status == "pending":
        raise AadError(70016)
    flow.status = "redeemed"
    return flow


async def devicecode(request: Request) -> Response:
    """``POST /{tenant}/oauth2/v2.0/devicecode``: hand out a device_code and a user_code."""
    state: EmulatorState = request.app.state.emulator
    state.stats.count("identity.devicecode")
    form = await parse_form(request)
    base = origin(request)
    try:
        tenant = tenant_for_segment(state.world, request.path_params["tenant"])
        client_id = form.get("client_id", "").strip().lower()
        if not client_id:
            raise AadError(900144, param="client_id")
        if not form.get("scope", "").strip():
            raise AadError(900144, param="scope")
        if tenant is not None:
            if tenant.app(client_id) is None:
                raise AadError(700016, client_id=client_id, tenant=tenant.tenant_id)
        elif not apps_by_client(state.world, client_id):
            raise AadError(700016, client_id=client_id, tenant=request.path_params["tenant"])
    except AadError as exc:
        return aad_error(exc, base)
    now = time.time()
    flow = DeviceFlow(
        device_code="DAQABIQEAAAD" + secrets.token_urlsafe(48), user_code=_user_code(), client_id=client_id,
        tenant_id=tenant.tenant_id if tenant else None, scopes=form["scope"].split(), created=now,
        expires_at=now + state.limits.device_code_lifetime, interval=int(state.limits.device_code_interval))
    state.device_codes[flow.device_code] = flow
    uri = f"{base}/devicelogin"
    return json_response({
        "user_code": flow.user_code,
        "device_code": flow.device_code,
        "verification_uri": uri,
        "expires_in": int(state.limits.device_code_lifetime),
        "interval": flow.interval,
        "message": f"To sign in, use a web browser to open the page {uri} and enter the code "
                   f"{flow.user_code} to authenticate.",
    })


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in to the local tenant</title>
<style>body{{font-family:Segoe UI,Arial,sans-serif;max-width:34em;margin:3em auto;color:#1b1b1b}}
label{{display:block;margin:.8em 0 .2em}}input{{width:100%;padding:.4em;font-size:1em}}
button{{margin-top:1.2em;padding:.5em 1.4em;font-size:1em}}.note{{color:#555;font-size:.9em}}
.msg{{padding:.6em;background:#eef;border-left:4px solid #36c}}.err{{background:#fee;border-color:#c33}}</style>
</head><body><h1>Enter code</h1>
<p>This is the <b>presence-sync local tenant</b>, a stand-in for Microsoft Entra ID running on this
machine. Nothing here reaches Microsoft.</p>{message}
<form method="post" action="/devicelogin">
<label for="code">Code shown by the application</label><input id="code" name="user_code" value="{code}">
<label for="upn">Account (user principal name)</label><input id="upn" name="upn" value="{upn}">
<label for="pw">Password</label><input id="pw" name="password" type="password">
<button name="action" value="approve">Sign in</button> <button name="action" value="decline">Deny</button>
</form><p class="note">Accounts: the service accounts of the fixture tenants ({accounts}).
Scripts approve codes with <code>POST /_emulator/devicecode/approve</code>.</p></body></html>"""


def _page(state: EmulatorState, code: str = "", upn: str = "", message: str = "", error: bool = False) -> str:
    accounts = ", ".join(html.escape(s.upn) for t in state.world.tenants.values() for s in t.service_accounts)
    msg = f'<p class="msg{" err" if error else ""}">{html.escape(message)}</p>' if message else ""
    return _PAGE.format(message=msg, code=html.escape(code), upn=html.escape(upn), accounts=accounts or "none")


async def devicelogin(request: Request) -> Response:
    """The page ``verification_uri`` points at: a human types code, account and password."""
    state: EmulatorState = request.app.state.emulator
    state.stats.count("identity.devicelogin")
    if request.method == "GET":
        await request.body()
        return HTMLResponse(_page(state, code=request.query_params.get("code", "")))
    form = await parse_form(request)
    code, upn = form.get("user_code", "").strip(), form.get("upn", "").strip()
    flow = find_by_user_code(state, code)
    if flow is None:
        return HTMLResponse(_page(state, code, upn, "That code wasn't recognised. Check it and try again.",
                                  error=True), status_code=400)
    try:
        if form.get("action") == "decline":
            decline(flow)
            return HTMLResponse(_page(state, message="You declined the sign-in. You can close this window."))
        tenant = tenant_by_domain(state.world, upn)
        account = tenant.service_account(upn) if tenant else None
        if account is None or account.password != form.get("password", ""):
            return HTMLResponse(_page(state, code, upn, "Your account or password is incorrect.", error=True),
                                status_code=400)
        approve(state, flow, upn)
    except ValueError as exc:
        return HTMLResponse(_page(state, code, upn, f"Sign-in failed: {exc}.", error=True), status_code=400)
    return HTMLResponse(_page(state, message=f"You have signed in as {upn}. You can close this window and "
                                             "return to the application."))


def routes(state: EmulatorState) -> list[BaseRoute]:
    return [
        Route("/{tenant}/oauth2/v2.0/devicecode", devicecode, methods=["POST"]),
        Route("/devicelogin", devicelogin, methods=["GET", "POST"]),
    ]
