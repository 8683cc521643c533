"""Turn each ``<Account>`` element into an ``AccountConfig``, collecting every problem on the way.

The rules: Id present and unique (case-insensitively: it names files in the state directory); ClientId and TenantId
are GUIDs; ``EncryptedSecret`` -> application permissions (client credentials), ``Username`` + ``EncryptedPassword``
-> delegated username/password, neither -> delegated device code; a secret and a Username never together; logins and
passwords hold no ``"``, backtick, ``%`` or whitespace (the password is never shown, only which rule it breaks);
Encrypted* values must decrypt with the local key; AuthorityHost, GraphUrl and SiteUrl are https URLs.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from urllib.parse import urlsplit

from ..errors import ConfigProblem, SecretError
from ..secrets import TEXT_PREFIX, KeyStore
from .settings import NATIONAL_CLOUDS, AccountConfig, ReportsTarget, Secret, env_name, webhook_problem
from .xmldoc import Problems, SourceSection, XmlDocument, XmlNode

_BAD_PATH_CHARS = frozenset('"*:<>?\\|#%')  # not allowed in SharePoint file and folder names

__all__ = ["build_accounts", "forbidden_characters", "is_guid"]

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_GUID_HINT = {
    "TenantId": "Copy the Directory (tenant) ID from the app registration's Overview page.",
    "ClientId": "Copy the Application (client) ID from the app registration's Overview page.",
}
_CHAR_RULE = 'A login or password may not contain ", `, % or whitespace'


def is_guid(value: str) -> bool:
    return bool(_GUID.fullmatch(value))


def forbidden_characters(value: str) -> list[str]:
    """Names of the forbidden character classes found in a login or password (the seed's rule)."""
    found = []
    for ch, name in (('"', "a double quote (\")"), ("`", "a backtick (`)"), ("%", "a percent sign (%)")):
        if ch in value:
            found.append(name)
    if any(c.isspace() for c in value):
        found.append("whitespace")
    return found


class _AccountReader:
    """Reads one Account element; every check appends to ``problems`` instead of raising."""

    def __init__(self, doc: XmlDocument, node: XmlNode, problems: Problems, env: Mapping[str, str],
                 keys: KeyStore) -> None:
        self.doc, self.node, self.p, self.env, self.keys = doc, node, problems, env, keys

    def line(self, attr: str) -> int:
        return self.doc.attr_line(self.node, attr) if attr in self.node.attrib else self.node.line

    def attr(self, name: str, *, strip: bool = True) -> str | None:
        value = self.node.attrib.get(name)
        return value.strip() if value is not None and strip else value

    def guid(self, name: str) -> str:
        value = self.attr(name)
        if not value:
            self.p.error(self.line(name), f"Account/@{name}", "missing.", _GUID_HINT[name])
            return ""
        if not is_guid(value):
            self.p.error(self.line(name), f"Account/@{name}", f"{value!r} is not a GUID.", _GUID_HINT[name])
        return value.lower()

    def url(self, node: XmlNode, element: str, name: str, default: str | None, *, path_ok: bool) -> str | None:
        value = node.attrib.get(name, "").strip()
        if not value:
            return default
        where = self.doc.attr_line(node, name), f"{element}/@{name}"
        parts = urlsplit(value)
        if parts.scheme.lower() != "https" or not parts.hostname:
            self.p.error(*where, f"{value!r} is not an https URL.", "Write it as https://host[:port][/path].")
        elif parts.query or parts.fragment or (not path_ok and parts.path.strip("/")):
            self.p.error(*where, f"{value!r} must be a bare https://host[:port].",
                         "Leave out paths (the tenant and /v1.0 are added by presence-sync), queries and fragments.")
        elif re.search(r"/(v1\.0|beta)/?$", parts.path):
            self.p.error(*where, f"{value!r} ends with an API version.", "Leave out /v1.0 or /beta.")
        return value.rstrip("/")

    def decrypt(self, name: str) -> Secret | None:
        token = self.attr(name)
        if token is None:
            return None
        where = self.line(name), f"Account/@{name}"
        if not token:
            self.p.error(*where, "is empty.", "Paste the output of `presence-sync encrypt-secret`.")
            return None
        try:
            return Secret(self.keys.decrypt(token))
        except SecretError as exc:
            if exc.kind == "not_encrypted":
                self.p.error(*where, f"is not an encrypted value (it does not start with {TEXT_PREFIX!r}).",
                             "Run `presence-sync encrypt-secret --state-dir DIR` and paste its output; never put "
                             "the plain value in config.xml.")
            elif exc.kind in ("no_key", "bad_key"):
                self.p.error(*where, f"cannot be decrypted: {exc.message}.", exc.hint)
            else:
                self.p.error(*where, f"does not decrypt with the key in {self.keys.path}; re-run "
                             "`presence-sync encrypt-secret` with the same --state-dir.")
            return None

    def plain(self, kind: str, account_id: str) -> tuple[str, Secret] | None:
        """A development secret from the environment / .env, if one is set for this account."""
        var = f"PRESENCE_SYNC_{kind}__{env_name(account_id)}"
        value = self.env.get(var)
        return (var, Secret(value)) if value else None

    def read(self) -> AccountConfig | None:
        node, p = self.node, self.p
        acc_id = self.attr("Id") or ""
        if not acc_id:
            p.error(node.line, "Account/@Id", "missing.",
                    "Give every Account a unique Id (the tenant's domain name is a good choice).")
        client_id, tenant_id = self.guid("ClientId"), self.guid("TenantId")
        env_secret = self.plain("SECRET", acc_id) if acc_id else None
        env_password = self.plain("PASSWORD", acc_id) if acc_id else None
        secret = env_secret[1] if env_secret else self.decrypt("EncryptedSecret")
        username = self.attr("Username", strip=False)
        password = env_password[1] if env_password else self.decrypt("EncryptedPassword")
        self.check_auth(secret, username, password, env_password)
        enabled_raw = (self.attr("Enabled") or "true").lower()
        if enabled_raw not in ("true", "false"):
            p.error(self.line("Enabled"), "Account/@Enabled", f"{self.attr('Enabled')!r} is not true or false.")
        authority = self.url(node, "Account", "AuthorityHost", "https://login.microsoftonline.com", path_ok=False)
        graph = self.url(node, "Account", "GraphUrl", "https://graph.microsoft.com", path_ok=True)
        cloud = next((c for c in NATIONAL_CLOUDS.values() if c.graph_url == graph), None)
        if cloud is not None and not cloud.presence_available:
            p.warn(self.line("GraphUrl"), "Account/@GraphUrl",
                   f"Microsoft Graph presence is not available in the {cloud.name} cloud.")
        site_url, list_title, upn_column = self.agent_list()
        expires, webhook, reports = self.secret_expires(), self.alerts_webhook(), self.reports()
        if not acc_id:
            return None
        auth = "secret" if secret is not None else "password" if username else "device"
        return AccountConfig(
            id=acc_id, client_id=client_id, tenant_id=tenant_id, auth=auth, secret=secret,
            username=username or None, password=password if username else None,
            authority_host=authority or "", graph_url=graph or "", site_url=site_url, list_title=list_title,
            upn_column=upn_column, enabled=enabled_raw != "false", secret_expires=expires, alerts_webhook=webhook,
            reports=reports, source_file=p.file, source_line=node.line)

    def secret_expires(self) -> date | None:
        """Account/@ClientSecretExpires: the day the client secret expires (YYYY-MM-DD)."""
        raw = self.attr("ClientSecretExpires")
        if not raw:
            return None
        try:
            return datetime.fromisoformat(raw.replace("Z", "+00:00")).date()
        except ValueError:
            self.p.error(self.line("ClientSecretExpires"), "Account/@ClientSecretExpires", f"{raw!r} is not a date.",
                         "Write it as YYYY-MM-DD (the Expires column on the app registration's Certificates & "
                         "secrets page), or remove it.")
            return None

    def alerts_webhook(self) -> str | None:
        """Account/Alerts/@Webhook: where this account's alerts go."""
        node = next((c for c in self.node.children if c.tag == "Alerts"), None)
        value = node.attrib.get("Webhook", "").strip() if node is not None else ""
        if node is None or not value:
            return None
        why = webhook_problem(value)
        if why:
            self.p.error(self.doc.attr_line(node, "Webhook"), "Alerts/@Webhook", why,
                         "Use the https URL of the webhook (e.g. a Teams incoming webhook).")
            return None
        return value

    def reports(self) -> ReportsTarget | None:
        """Account/Reports: a document library (and folder in it) for validation.csv and report.html."""
        node = next((c for c in self.node.children if c.tag == "Reports"), None)
        if node is None:
            return None
        out = ReportsTarget()
        for attr, default in (("Library", out.library), ("Folder", out.folder)):
            value = node.attrib.get(attr, default).strip().strip("/")
            bad = next((ch for ch in value if ch in _BAD_PATH_CHARS or ord(ch) < 32), None)
            if not value or bad is not None or ".." in value.split("/"):
                what = "is empty" if not value else f"holds {bad!r}" if bad else "holds '..'"
                self.p.error(self.doc.attr_line(node, attr), f"Reports/@{attr}", f"{value!r} {what}.",
                             f"Write the {attr.lower()} as SharePoint shows it (default {default!r}); these are "
                             "not allowed: " + " ".join(sorted(_BAD_PATH_CHARS)) + " and '..'.")
                return None
        return ReportsTarget(node.attrib.get("Library", out.library).strip().strip("/"),
                             node.attrib.get("Folder", out.folder).strip().strip("/"))

    def check_auth(self, secret: Secret | None, username: str | None, password: Secret | None,
                   env_password: tuple[str, Secret] | None) -> None:
        p = self.p
        if secret is not None or self.attr("EncryptedSecret") is not None:
            if username is not None:
                p.error(self.line("Username"), "Account/@Username", "is set together with a client secret.",
                        "Choose one: EncryptedSecret (application permissions) or Username + EncryptedPassword "
                        "(delegated); remove the other.")
        if username is not None:
            bad = forbidden_characters(username)
            if not username:
                p.error(self.line("Username"), "Account/@Username", "is empty.", "Write the account's UPN.")
            elif bad:
                p.error(self.line("Username"), "Account/@Username", f"{username!r} contains {', '.join(bad)}.",
                        f"{_CHAR_RULE}: create a service account whose login has none of them.")
            if password is None and self.attr("EncryptedPassword") is None:
                p.error(self.line("Username"), "Account/@Username", "is set without EncryptedPassword.",
                        "Add EncryptedPassword (from `presence-sync encrypt-secret`), or remove Username to log "
                        "in with a device code.")
        elif self.attr("EncryptedPassword") is not None or env_password is not None:
            attr = "Account/@EncryptedPassword" if env_password is None else env_password[0]
            p.error(self.line("EncryptedPassword"), attr, "is set without Username.",
                    "Add Username (the service account's UPN) or remove the password.")
        if password is not None:
            bad = forbidden_characters(password.reveal())
            if bad:
                attr = "Account/@EncryptedPassword" if env_password is None else env_password[0]
                p.error(self.line("EncryptedPassword"), attr, f"the password contains {', '.join(bad)}.",
                        f"{_CHAR_RULE}: change the account's password, then encrypt the new one.")

    def agent_list(self) -> tuple[str | None, str, str]:
        lists = [c for c in self.node.children if c.tag == "AgentList"]
        for extra in lists[1:]:
            self.p.error(extra.line, "AgentList", f"a second <AgentList> (the first is on line {lists[0].line}).",
                         "Keep one AgentList per Account; add another Account for another list.")
        if not lists:
            return None, "Agents", "UPN"
        al = lists[0]
        site = self.url(al, "AgentList", "SiteUrl", None, path_ok=True)
        values = []
        for name, default in (("List", "Agents"), ("UpnColumn", "UPN")):
            value = al.attrib.get(name, default).strip()
            if not value:
                self.p.error(self.doc.attr_line(al, name), f"AgentList/@{name}", "is empty.",
                             f"Remove it to use the default {default!r}.")
            values.append(value or default)
        return site, values[0], values[1]


def build_accounts(doc: XmlDocument, section: SourceSection, problems: Problems, env: Mapping[str, str],
                   keys: KeyStore) -> tuple[AccountConfig, ...]:
    """Every readable Account, in file order; duplicates and unclaimed development secrets are reported."""
    accounts: list[AccountConfig] = []
    seen: dict[str, AccountConfig] = {}
    by_env: dict[str, AccountConfig] = {}
    for node in section.accounts:
        acc = _AccountReader(doc, node, problems, env, keys).read()
        if acc is None:
            continue
        first = seen.get(acc.id.casefold())
        if first is not None:
            problems.error(doc.attr_line(node, "Id"), "Account/@Id",
                           f"{acc.id!r} is used twice (lines {first.source_line} and {acc.source_line}).",
                           "Each Account needs its own Id.")
            continue
        other = by_env.get(env_name(acc.id))
        if other is not None and any(f"PRESENCE_SYNC_{k}__{env_name(acc.id)}" in env for k in ("SECRET", "PASSWORD")):
            problems.error(doc.attr_line(node, "Id"), "Account/@Id",
                           f"{acc.id!r} and {other.id!r} (line {other.source_line}) share the environment name "
                           f"{env_name(acc.id)}.", "Rename one of the Ids.")
        seen[acc.id.casefold()] = by_env[env_name(acc.id)] = acc
        accounts.append(acc)
    for var in sorted(env):
        m = re.fullmatch(r"PRESENCE_SYNC_(SECRET|PASSWORD)__(.+)", var)
        if m and m.group(2) not in by_env:
            problems.warnings.append(ConfigProblem(
                "environment", None, var, "matches no Account Id, ignored.",
                f"Known names: {', '.join(sorted(by_env)) or 'none'}.", severity="warning"))
    return tuple(accounts)
