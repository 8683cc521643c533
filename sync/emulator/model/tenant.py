"""The emulated tenants' data: directory, domains, apps, service accounts and the SharePoint site.

Loaded from the JSON fixtures in ``sync/emulator/fixtures/*.json`` by ``fixtures`` (see
``sync/emulator/fixtures/README.md`` for the format). Everything lives in memory; the server is a single asyncio loop, so
handlers mutate this state without locks.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .library import Library

__all__ = [
    "App",
    "Domain",
    "ListItem",
    "ServiceAccount",
    "Site",
    "SpList",
    "Tenant",
    "User",
    "World",
]

# Graph returns these properties when no $select is given (GDC user-list.md).
DEFAULT_USER_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
)


@dataclass
class User:
    id: str
    user_principal_name: str
    display_name: str
    given_name: str | None = None
    surname: str | None = None
    mail: str | None = None
    proxy_addresses: list[str] = field(default_factory=list)
    im_addresses: list[str] = field(default_factory=list)
    account_enabled: bool = True
    user_type: str = "Member"
    teams_licensed: bool = True
    job_title: str | None = None
    department: str | None = None
    office_location: str | None = None
    mail_nickname: str | None = None
    utc_offset_minutes: int = 0
    version: int = 0  # directory version of the last change (drives /users/delta)

    def graph_properties(self) -> dict[str, Any]:
        """All properties as Graph spells them."""
        return {
            "id": self.id,
            "userPrincipalName": self.user_principal_name,
            "displayName": self.display_name,
            "givenName": self.given_name,
            "surname": self.surname,
            "mail": self.mail,
            "proxyAddresses": list(self.proxy_addresses),
            "imAddresses": list(self.im_addresses),
            "accountEnabled": self.account_enabled,
            "userType": self.user_type,
            "jobTitle": self.job_title,
            "department": self.department,
            "officeLocation": self.office_location,
            "mailNickname": self.mail_nickname,
            "businessPhones": [],
            "mobilePhone": None,
            "preferredLanguage": "en-US",
        }

    def to_graph(self, select: list[str] | None = None) -> dict[str, Any]:
        """The JSON Graph returns for this user, honouring ``$select`` (case-insensitive names)."""
        props = self.graph_properties()
        names = list(select) if select else list(DEFAULT_USER_PROPERTIES)
        by_lower = {k.lower(): k for k in props}
        out: dict[str, Any] = {}
        for name in names:
            key = by_lower.get(name.strip().lower())
            if key is not None:
                out[key] = props[key]
        if "id" not in out and select:
            out["id"] = self.id  # Graph always returns id
        return out


@dataclass
class Domain:
    id: str
    is_verified: bool = True
    is_default: bool = False
    is_initial: bool = False
    authentication_type: str = "Managed"
    supported_services: list[str] = field(default_factory=lambda: ["Email", "OfficeCommunicationsOnline"])

    def to_graph(self) -> dict[str, Any]:
        return {
            "authenticationType": self.authentication_type,
            "availabilityStatus": None,
            "id": self.id,
            "isAdminManaged": True,
            "isDefault": self.is_default,
            "isInitial": self.is_initial,
            "isRoot": True,
            "isVerified": self.is_verified,
            "manufacturer": None,
            "model": None,
            "passwordNotificationWindowInDays": 14,
            "passwordValidityPeriodInDays": 2147483647,
            "state": None,
            "supportedServices": list(self.supported_services) if self.is_verified else [],
        }


@dataclass
class App:
    client_id: str
    display_name: str
    kind: str  # "confidential" | "public"
    client_secret: str | None = None
    secret_id: str | None = None  # the secret's ID (what people paste by mistake)
    secret_expired: bool = False
    application_permissions: list[str] = field(default_factory=list)
    delegated_permissions: list[str] = field(default_factory=list)
    admin_consented: bool = True
    allow_public_client_flows: bool = False


@dataclass
class ServiceAccount:
    upn: str
    password: str
    mfa_required: bool = False


@dataclass
class ListItem:
    id: int
    fields: dict[str, Any]
    version: int = 1
    created: str = "2026-01-05T08:00:00Z"
    modified: str = "2026-01-05T08:00:00Z"

    @property
    def etag(self) -> str:
        """SharePoint REST etag form: ``"<version>"`` (Graph uses ``"<guid>,<version>"``)."""
        return f'"{self.version}"'


@dataclass
class SpList:
    id: str
    title: str
    columns: list[str]
    items: dict[int, ListItem] = field(default_factory=dict)
    next_id: int = 1
    indexed_columns: set[str] = field(default_factory=set)  # exempt from the list view threshold
    column_types: dict[str, str] = field(default_factory=dict)  # SharePoint field type by column; Text if absent
    writes: Counter[int] = field(default_factory=Counter)  # updates per item id, for tests (write log)
    unchanged: Counter[int] = field(default_factory=Counter)  # updates that set every field to the value it had

    def record_write(self, item: ListItem, values: dict[str, Any]) -> None:
        """Apply and count one update of an item (Graph PATCH fields, REST MERGE/PATCH, in or out of a $batch);
        one that changes nothing is counted apart too (a value written twice)."""
        if all(item.fields.get(k) == v for k, v in values.items()):
            self.unchanged[item.id] += 1
        item.fields.update(values)
        self.writes[item.id] += 1

    @property
    def entity_type_name(self) -> str:
        return f"SP.Data.{self.title.replace(' ', '_x0020_')}ListItem"

    def add(self, fields: dict[str, Any]) -> ListItem:
        item = ListItem(id=self.next_id, fields=dict(fields))
        self.items[item.id] = item
        self.next_id += 1
        return item


@dataclass
class Site:
    id: str  # Graph composite id "hostname,siteCollectionGuid,webGuid"
    hostname: str  # the real-world host, e.g. contoso.sharepoint.com
    path: str  # server-relative path, e.g. /sites/contoso-agents
    display_name: str
    lists: dict[str, SpList] = field(default_factory=dict)  # key: title.lower()
    library: Library = field(init=False)  # the default document library, "Shared Documents"

    def __post_init__(self) -> None:
        self.library = Library(site_key=self.id)

    @property
    def drive_id(self) -> str:
        return self.library.drive_id

    def list_by_title(self, title: str) -> SpList | None:
        return self.lists.get(title.lower())

    def list_by_id_or_title(self, key: str) -> SpList | None:
        key_l = key.lower()
        for lst in self.lists.values():
            if lst.id.lower() == key_l or lst.title.lower() == key_l:
                return lst
        return None


@dataclass
class Tenant:
    tenant_id: str
    name: str  # short name, e.g. "contoso"
    display_name: str
    domains: list[Domain]
    apps: list[App]
    service_accounts: list[ServiceAccount]
    users: dict[str, User]  # by id
    site: Site
    upn_column: str = "UPN"
    directory_version: int = 0
    deleted: dict[str, tuple[int, str]] = field(default_factory=dict)  # id -> (version, reason)
    _by_upn: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.reindex()

    def reindex(self) -> None:
        self._by_upn = {u.user_principal_name.lower(): u.id for u in self.users.values()}

    def domain_names(self) -> set[str]:
        return {d.id.lower() for d in self.domains}

    def app(self, client_id: str) -> App | None:
        for a in self.apps:
            if a.client_id.lower() == client_id.lower():
                return a
        return None

    def service_account(self, upn: str) -> ServiceAccount | None:
        for s in self.service_accounts:
            if s.upn.lower() == upn.lower():
                return s
        return None

    def user_by_upn(self, upn: str) -> User | None:
        uid = self._by_upn.get(upn.lower())
        return self.users.get(uid) if uid else None

    def find_user(self, key: str) -> User | None:
        """Look a user up by object id or userPrincipalName (case-insensitive), as /users/{key} does."""
        return self.users.get(key.lower()) or self.users.get(key) or self.user_by_upn(key)

    # Directory changes (drive /users/delta). Every change bumps the directory version.
    def upsert_user(self, user: User) -> User:
        self.directory_version += 1
        user.version = self.directory_version
        self.users[user.id] = user
        self.deleted.pop(user.id, None)
        self.reindex()
        return user

    def delete_user(self, user_id: str, reason: str = "deleted") -> bool:
        if user_id not in self.users:
            return False
        self.directory_version += 1
        del self.users[user_id]
        self.deleted[user_id] = (self.directory_version, reason)
        self.reindex()
        return True


@dataclass
class World:
    """Every tenant the emulator serves, plus process-wide settings."""

    tenants: dict[str, Tenant]  # by tenant id (lower-case GUID)
    presence_seed: int = 1

    def resolve_tenant(self, segment: str) -> Tenant | None:
        """Tenant from an authority path segment: GUID, any of its domains, or its short name."""
        s = segment.lower()
        if s in self.tenants:
            return self.tenants[s]
        for t in self.tenants.values():
            if s == t.name.lower() or s in t.domain_names():
                return t
        return None

    def site_by_path(self, path: str) -> tuple[Tenant, Site] | None:
        """The tenant and site whose server-relative path is ``path`` (e.g. ``/sites/contoso-agents``)."""
        p = "/" + path.strip("/").lower()
        for t in self.tenants.values():
            if t.site.path.lower() == p:
                return t, t.site
        return None
