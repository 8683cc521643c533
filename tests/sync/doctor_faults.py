"""Set-ups for the ``doctor`` tests: a healthy account, and one helper per fault the doctor must name.

Each helper returns the accounts to configure, an edit of the config text, and what the doctor must name. Faults
come from the fixture tenants (an app with fewer permissions, an app without admin consent), from a config that
names a column the Agent list lacks, or from the local tenant's control API (consent withdrawn, permissions
replaced, a column removed); those helpers are context managers that put the tenant back afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import e2e_support as sup
import httpx

NO_PRESENCE_APP = "11111111-2222-4333-8444-555555555557"  # fixture app: User.Read.All, Domain.Read.All only
NO_PRESENCE_SECRET = "contoso-limited-secret"


@dataclass
class Setup:
    accounts: list[sup.Account]
    edit: Callable[[str], str] = field(default=lambda xml: xml)
    names: str = ""  # what the failing row must name

    def write(self, tmp: Path, info: dict[str, Any], ca_file: Path) -> tuple[Path, Path]:
        """(config.xml, state dir) for this set-up."""
        state = tmp / "state"
        config = sup.write_config(tmp / "config.xml", self.accounts, info, ca_file, state)
        config.write_text(self.edit(config.read_text(encoding="utf-8")), encoding="utf-8")
        sup.ARTIFACTS.add_dir(state)
        return config, state


def contoso_app() -> sup.Account:
    return sup.Account("contoso", "contoso", sup.CONTOSO_APP, secret=sup.CONTOSO_APP_SECRET)


def fabrikam_password() -> sup.Account:
    return sup.Account("fabrikam", "fabrikam", sup.FABRIKAM_PUBLIC_APP, username=sup.FABRIKAM_SVC[0],
                       password=sup.FABRIKAM_SVC[1])


def healthy() -> Setup:
    return Setup([contoso_app(), fabrikam_password()])


def wrong_secret() -> Setup:
    return Setup([sup.Account("contoso", "contoso", sup.CONTOSO_APP, secret="not-the-secret-value")],
                 names="encrypt-secret")


def expired_secret() -> Setup:
    return Setup([sup.Account("contoso", "contoso", sup.CONTOSO_EXPIRED_APP, secret=sup.CONTOSO_EXPIRED_SECRET)],
                 names="expired")


def app_not_in_tenant() -> Setup:
    """contoso's app named for the fabrikam tenant (AADSTS700016)."""
    return Setup([sup.Account("fabrikam", "fabrikam", sup.CONTOSO_APP, secret=sup.CONTOSO_APP_SECRET)],
                 names="check ClientId and TenantId")


def unknown_tenant() -> Setup:
    """A TenantId that names no tenant (AADSTS90002 from the authority's OpenID metadata)."""
    return Setup([contoso_app()], edit=lambda xml: xml.replace(sup.CONTOSO_TENANT,
                                                               "0badc0de-0000-4000-8000-000000000000"),
                 names="Directory (tenant) ID")


def consent_withdrawn() -> Setup:
    """A delegated account whose app has no admin consent (AADSTS65001)."""
    return Setup([sup.Account("contoso", "contoso", sup.CONTOSO_UNCONSENTED_APP, username=sup.CONTOSO_SVC[0],
                              password=sup.CONTOSO_SVC[1])],
                 names=f"adminconsent?client_id={sup.CONTOSO_UNCONSENTED_APP}")


def permissions_missing() -> Setup:
    """An application account whose app lacks Presence.Read.All and every Sites permission."""
    return Setup([sup.Account("contoso", "contoso", NO_PRESENCE_APP, secret=NO_PRESENCE_SECRET)],
                 names="missing application permissions Presence.Read.All, Sites.ReadWrite.All")


def writeback_column_removed(column: str = "Availability") -> Setup:
    """The Agent list lacks the column write-back puts availability in."""
    missing = f"{column}Gone"
    return Setup([contoso_app()], edit=lambda xml: xml.replace(
        "<Accounts>", f'<WriteBack {column}="{missing}"/>\n    <Accounts>'), names=missing)


def upn_column_removed() -> Setup:
    """The Agent list lacks the UPN column the account names."""
    return Setup([contoso_app()], edit=lambda xml: xml.replace('UpnColumn="UPN"', 'UpnColumn="Email"'),
                 names="Email")


def device_without_login() -> Setup:
    return Setup([sup.Account("contoso-dc", "contoso", sup.CONTOSO_PUBLIC_APP)],
                 names="presence-sync login --account contoso-dc")


def untrusted_ca() -> Setup:
    """No CaBundle: the local tenant's certificate is not trusted (the caller also clears the CA variables)."""
    return Setup([contoso_app()], edit=lambda xml: _drop_ca(xml), names="--ca-bundle")


def _drop_ca(xml: str) -> str:
    start = xml.index(" CaBundle=")
    end = xml.index('"', xml.index('"', start) + 1) + 1
    return xml[:start] + xml[end:]


# --- faults made by the local tenant's control API -----------------------------------------------------------


@contextmanager
def _app_changed(ctl: httpx.Client, change: dict[str, Any]) -> Iterator[None]:
    """Change contoso's application app registration; its consent and permissions come back afterwards."""
    key = {"tenant": "contoso", "client_id": sup.CONTOSO_APP}
    was = ctl.post("/_emulator/apps", json=key)
    assert was.status_code == 200, was.text
    assert ctl.post("/_emulator/apps", json={**key, **change}).status_code == 200
    try:
        yield
    finally:
        ctl.post("/_emulator/apps", json={**key, "admin_consented": was.json()["admin_consented"],
                                          "permissions": was.json()["permissions"]})


@contextmanager
def app_consent_withdrawn(ctl: httpx.Client) -> Iterator[Setup]:
    """Admin consent withdrawn from an application app: its tokens carry no permission."""
    with _app_changed(ctl, {"admin_consented": False}):
        yield Setup([contoso_app()], names=f"adminconsent?client_id={sup.CONTOSO_APP}")


@contextmanager
def app_without_write(ctl: httpx.Client) -> Iterator[Setup]:
    """The app may read the Agent list (Sites.Read.All) but not write back to it."""
    with _app_changed(ctl, {"permissions": ["Presence.Read.All", "User.Read.All", "Domain.Read.All",
                                            "Sites.Read.All"]}):
        yield Setup([contoso_app()], names="missing application permission Sites.ReadWrite.All")


@contextmanager
def column_removed(ctl: httpx.Client, emulator: Any, column: str = "Availability") -> Iterator[Setup]:
    """A write-back column removed from contoso's Agent list; the list's columns and values come back afterwards."""
    lst = emulator.state.world.resolve_tenant("contoso").site.list_by_title("Agents")
    columns, types = list(lst.columns), dict(lst.column_types)
    fields = {i: dict(item.fields) for i, item in lst.items.items()}
    r = ctl.post("/_emulator/lists/columns", json={"tenant": "contoso", "remove": [column]})
    assert r.status_code == 200, r.text
    try:
        yield Setup([contoso_app()], names=column)
    finally:
        lst.columns[:], lst.column_types = columns, types
        for i, values in fields.items():
            lst.items[i].fields = values
