"""The checks of one account, in order: reachability, credential, permissions, domains, the Agent list (see
``lists.py``), one presence call, the request shapes the tenant accepts (see ``shapes.py``). Each returns a ``Row``; a failed row skips the rows that depend on it.

Nothing here writes to the state directory beyond the account's token cache (as ``login`` does), opens the store
or takes the job's lock, so ``doctor`` can run beside a running job.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..auth import AADSTS_HINTS, AccountAuth, AuthSettings, Cipher, explain_aadsts
from ..config import AccountConfig, WriteBackColumns
from ..errors import NeedsHumanError, TransientAuthError
from .lists import ListChecks
from .probe import Answer, Caller, is_tls_error, tls_fix
from .rules import (
    FAIL,
    OK,
    SKIPPED,
    TITLES,
    WARN,
    AccountReport,
    Need,
    Row,
    admin_consent_url,
    granted_from_claims,
    missing_permissions,
    needs_for,
    permission_fix,
    shown_missing,
    token_claims,
)
from .shapes import ShapeProbes, judge

__all__ = ["AccountChecks"]

_HOW = {"secret": "client secret (application permissions)", "password": "username and password (delegated)",
        "device": "device-code login (delegated)"}


class AccountChecks:
    """Runs rows 1-9 for one account (row 10, the budget, needs every account's agent count: see ``run.py``)."""

    def __init__(self, acc: AccountConfig, state_dir: Path, cipher: Cipher, http: httpx.Client,
                 writeback: WriteBackColumns) -> None:
        self.acc = acc
        self.state_dir = state_dir
        self.cipher = cipher
        self.http = http
        self.columns = writeback
        self.consent_url = admin_consent_url(acc.authority_host, acc.tenant_id, acc.client_id)
        self.needs = needs_for(acc.auth, writeback=True)
        self.missing: set[str] = set()  # keys of the needs the token lacks
        self.graph: Caller | None = None
        self.site_token: str | None = None
        self.lists: ListChecks | None = None
        self._probes: dict[str, Answer] = {}
        self.presence_ms = 0.0
        self.token_readable = False  # the token's roles / scp could be read (else Graph's answers decide)

    @property
    def agents(self) -> int | None:
        return self.lists.agents if self.lists is not None else None

    def run(self) -> AccountReport:
        report = AccountReport(self.acc.id, self.acc.tenant_id, self.acc.auth)
        steps: list[tuple[str, Callable[[], Row]]] = [
            ("reachable", self.reachable), ("credential", self.credential), ("permissions", self.permissions),
            ("domains", self.domains), ("agent_list", self.agent_list), ("upn_column", self.upn_column),
            ("writeback", self.writeback), ("presence", self.presence), ("shapes", self.shapes)]
        stop = ""
        for key, step in steps:
            if stop:
                report.rows.append(Row(key, SKIPPED, f"skipped: '{stop}' failed"))
                continue
            row = step()
            report.rows.append(row)
            if row.status == FAIL and key in ("reachable", "credential"):
                stop = TITLES[key]
        return report

    # --- 1. reachability ----------------------------------------------------------------------------------
    def reachable(self) -> Row:
        acc = self.acc
        oidc = f"{acc.authority_host.rstrip('/')}/{acc.tenant_id}/v2.0/.well-known/openid-configuration"
        try:
            resp = self.http.get(oidc)
        except httpx.HTTPError as exc:
            return self._unreachable("the authority", acc.authority_host, "AuthorityHost", exc)
        try:
            meta = resp.json()
        except ValueError:
            meta = {}
        if resp.status_code != 200 or not isinstance(meta, dict) or "token_endpoint" not in meta:
            code, text = explain_aadsts(meta if isinstance(meta, dict) else {})
            fix = AADSTS_HINTS.get(code or -1) or ("check AuthorityHost (the login endpoint of the tenant's cloud) "
                                                    "and TenantId")
            return Row("reachable", FAIL, f"{oidc} answered HTTP {resp.status_code} without OpenID metadata "
                                          f"({text.split(' -> ')[0]})", fix)
        seen = [f"authority {acc.authority_host} (OpenID metadata of tenant {acc.tenant_id})"]
        targets = [("Graph", acc.graph_url.rstrip("/") + "/v1.0/", "GraphUrl")]
        site = acc.site_url or ""
        if site and urlsplit(site).netloc.lower() != urlsplit(acc.graph_url).netloc.lower():
            targets.append(("SharePoint", site, "AgentList/@SiteUrl"))
        for what, url, attr in targets:
            try:
                answer = self.http.get(url)
            except httpx.HTTPError as exc:
                return self._unreachable(what, url, attr, exc)
            seen.append(f"{what} {url} (HTTP {answer.status_code} without a token)")
        return Row("reachable", OK, ", ".join(seen))

    @staticmethod
    def _unreachable(what: str, url: str, attr: str, exc: httpx.HTTPError) -> Row:
        host = urlsplit(url).netloc or url
        if is_tls_error(exc):
            return Row("reachable", FAIL, f"{what} {url}: TLS certificate verification failed", tls_fix(host))
        return Row("reachable", FAIL, f"{what} {url}: no answer ({type(exc).__name__})",
                   f"check {attr}, DNS, proxy and firewall: {host} must be reachable over HTTPS from this machine")

    # --- 2. credential ------------------------------------------------------------------------------------
    def credential(self) -> Row:
        acc = self.acc
        try:
            auth = AccountAuth(AuthSettings.from_account(acc), self.state_dir, self.cipher, self.http)
        except (NeedsHumanError, TransientAuthError) as exc:
            return Row("credential", FAIL, exc.message, "check TenantId and AuthorityHost")
        if acc.auth == "device" and not auth.has_login():
            return Row("credential", FAIL, "no cached login for this delegated account",
                       f"run `presence-sync login --account {acc.id}` (with the same --state-dir) and sign in "
                       "as the service account")
        scopes: list[tuple[str, list[str]]] = [("Graph", auth.graph_scopes())]
        if acc.auth != "secret" and acc.site_url:
            scopes.append(("SharePoint", auth.site_scopes(acc.site_url)))
        got = []
        for what, scope in scopes:
            try:
                res = auth.try_acquire(scope, force=True)  # not a cached token: the credential, now
            except TransientAuthError as exc:
                return Row("credential", FAIL, exc.message, "the token endpoint did not answer: try again; if it "
                                                            "persists check the network path to AuthorityHost")
            if "access_token" not in res:
                return self._credential_failed(what, res)
            got.append(f"{what} (expires in {int(res.get('expires_in', 0))} s)")
            if what == "Graph":
                self.graph = Caller(self.http, str(res["access_token"]), acc.graph_url.rstrip("/") + "/v1.0")
            else:
                self.site_token = str(res["access_token"])
        assert self.graph is not None
        self.lists = ListChecks(acc, self.graph, self.site_token, self.columns)
        return Row("credential", OK, f"signed in with {_HOW[acc.auth]}: token for {' and '.join(got)}")

    def _credential_failed(self, what: str, res: dict[str, Any]) -> Row:
        acc = self.acc
        code, text = explain_aadsts(res)
        detail = f"no {what} token: " + text.split(" -> ")[0]
        if res.get("error") == "login_required":
            return Row("credential", FAIL, detail, f"run `presence-sync login --account {acc.id}`")
        hint = AADSTS_HINTS.get(code or -1, "")
        fixes = {
            7000215: "create a new client secret on the app registration (Certificates & secrets), copy its Value "
                     "(not the Secret ID) and run `presence-sync encrypt-secret`; put the output in "
                     "EncryptedSecret",
            7000222: "the client secret has expired: create a new client secret on the app registration and run "
                     "`presence-sync encrypt-secret` with its Value; put the output in EncryptedSecret",
            65001: f"an administrator must grant admin consent to the app: open {self.consent_url} (or API "
                   "permissions > Grant admin consent)",
            700016: f"ClientId {acc.client_id} is not an app registration in tenant {acc.tenant_id}: check "
                    "ClientId and TenantId (both on the app registration's Overview page)",
            90002: f"TenantId {acc.tenant_id} names no tenant here: copy the Directory (tenant) ID from the app "
                   "registration's Overview page, and check AuthorityHost for national clouds",
        }
        if code in (70008, 700082, 50173) and acc.auth == "device":
            hint = f"the login has expired or was revoked: run `presence-sync login --account {acc.id}`"
        fix = fixes.get(code or -1) or hint or "see the AADSTS code in Microsoft's error code reference"
        return Row("credential", FAIL, detail, fix)

    # --- 3. permissions -----------------------------------------------------------------------------------
    def permissions(self) -> Row:
        assert self.graph is not None
        claims = token_claims(self.graph.token)
        self.token_readable = claims is not None
        if claims is not None:
            granted = granted_from_claims(claims)
            missing = missing_permissions(granted, self.needs)
            source = "roles" if self.acc.auth == "secret" else "scp"
            detail = f"{source} in the Graph token: {', '.join(sorted(granted)) or 'none'}"
        else:
            missing = [n for n in self.needs if n.key != "list_write" and self.probe(n.key).status == 403]
            if any(n.key == "list_read" for n in missing):  # no read access: no write access either
                missing.append(self._need("list_write"))
            detail = ("the token is not a readable JWT, so Graph was asked: one read per permission "
                      "(write access: see the write-back row)")
        self.missing.update(n.key for n in missing)
        shown = shown_missing(missing)
        if shown:
            names = ", ".join(n.name for n in shown)
            return Row("permissions", FAIL, f"{detail}; missing: {names}",
                       permission_fix(self.acc.auth, shown, self.consent_url))
        wanted = ", ".join(n.name for n in self.needs)
        return Row("permissions", OK, f"{detail}; covers {wanted} (or permissions that grant them)")

    def _need(self, key: str) -> Need:
        return next(n for n in needs_for(self.acc.auth, writeback=True) if n.key == key)

    def probe(self, key: str) -> Answer:
        """One read per permission, made once: users, domains, presence, list_read (the site)."""
        if key not in self._probes:
            assert self.graph is not None and self.lists is not None
            if key == "users":
                answer = self.graph.call("GET", "users?$top=1&$select=id,userPrincipalName")
            elif key == "domains":
                answer = self.graph.call("GET", "domains")
            elif key == "presence":
                t0 = time.perf_counter()
                answer = self._presence_call()
                self.presence_ms = (time.perf_counter() - t0) * 1000
            else:
                answer = self.lists.site()
            self._probes[key] = answer
        return self._probes[key]

    def _presence_call(self) -> Answer:
        assert self.graph is not None
        users = self.probe("users")
        value = users.body.get("value") if users.ok and isinstance(users.body, dict) else None
        uid = str(value[0]["id"]) if value else str(uuid.uuid4())
        return self.graph.call("POST", "communications/getPresencesByUserId", body={"ids": [uid]})

    def _needs_skip(self, row: str, key: str) -> Row | None:
        """A skipped row when the token lacks ``key`` (reading the list: named as write when that misses too)."""
        if key not in self.missing:
            return None
        if key == "list_read" and "list_write" in self.missing:
            key = "list_write"
        return Row(row, SKIPPED, f"skipped: needs {self._need(key).name} (see the permissions row)")

    # --- 4. domains ---------------------------------------------------------------------------------------
    def domains(self) -> Row:
        skip = self._needs_skip("domains", "domains")
        if skip:
            return skip
        answer = self.probe("domains")
        if not answer.ok:
            return self.graph_failed("domains", "domains", answer)
        doms = [d for d in (answer.body or {}).get("value", []) if isinstance(d, dict)]
        verified = [str(d.get("id")) for d in doms if d.get("isVerified")]
        detail = f"{len(doms)} domain(s), verified: {', '.join(verified) or 'none'}"
        if not verified:
            return Row("domains", WARN, detail, "no verified domain: every UPN will be reported "
                                                "UNVERIFIED_DOMAIN; verify the tenant's domains in Entra ID")
        return Row("domains", OK, detail)

    def graph_failed(self, row: str, key: str, answer: Answer) -> Row:
        """A Graph answer that is not 2xx, with the fix for its status."""
        need = self._need(key)
        if answer.status == 403:
            fix = permission_fix(self.acc.auth, [need], self.consent_url)
            if key.startswith("list"):
                fix += "; with Sites.Selected, also grant the app access to this site"
            return Row(row, FAIL, answer.describe(), fix)
        if answer.status == 401:
            return Row(row, FAIL, answer.describe(), "Graph refused the token: check that GraphUrl belongs to "
                                                     "the same cloud as AuthorityHost")
        if answer.status in (0, 429) or answer.status >= 500:
            return Row(row, WARN if answer.status == 429 else FAIL, answer.describe(),
                       "the service did not answer now: run doctor again; if it persists, check the service "
                       "health and the network path")
        return Row(row, FAIL, answer.describe(), f"Graph refused {need.why}: see the error code above")

    # --- 5-7. the Agent list --------------------------------------------------------------------------------
    def agent_list(self) -> Row:
        skip = self._needs_skip("agent_list", "list_read")
        if skip:
            return skip
        assert self.lists is not None
        row = self.lists.agent_list(self.probe("list_read"))
        return self.graph_failed("agent_list", "list_read", self.lists.failed) if row is None else row

    def upn_column(self) -> Row:
        if self.lists is None or not self.lists.found:
            return Row("upn_column", SKIPPED, "skipped: 'site and list found' did not pass")
        row = self.lists.upn_column()
        return self.graph_failed("upn_column", "list_read", self.lists.failed) if row is None else row

    def writeback(self) -> Row:
        if self.lists is None or not self.lists.found:
            return Row("writeback", SKIPPED, "skipped: 'site and list found' did not pass")
        skip = self._needs_skip("writeback", "list_write")
        if skip:
            return skip
        row = self.lists.writeback(prove_write=not self.token_readable)
        return self.graph_failed("writeback", "list_write", self.lists.failed) if row is None else row

    # --- 8. presence ----------------------------------------------------------------------------------------
    def presence(self) -> Row:
        skip = self._needs_skip("presence", "presence")
        if skip:
            return skip
        answer = self.probe("presence")
        if not answer.ok:
            return self.graph_failed("presence", "presence", answer)
        value = (answer.body or {}).get("value", []) if isinstance(answer.body, dict) else []
        first = value[0] if value and isinstance(value[0], dict) else {}
        seen = f"{first.get('availability', '?')}/{first.get('activity', '?')}" if first else "no item"
        return Row("presence", OK, f"getPresencesByUserId for 1 id answered in {self.presence_ms:.0f} ms: {seen}")

    # --- 9. request shapes ------------------------------------------------------------------------------------
    def shapes(self) -> Row:
        """One probe per request shape the job prefers (``shapes.py``); the list route is the site row's answer."""
        skip = self._needs_skip("shapes", "users")
        if skip:
            return skip
        assert self.graph is not None and self.lists is not None
        lists = self.lists
        site = None if "list_read" in self.missing else self._probes.get("list_read")
        why = (f"needs {self._need('list_read').name} (see the permissions row)" if "list_read" in self.missing
               else "the site and list row did not reach Graph")
        probes = ShapeProbes(self.graph, site, lists.rest_caller(), lists.list_url(), lists.rest, list_why=why)
        return judge(self.acc.auth, self.acc.id, probes.run(self.acc.auth))
