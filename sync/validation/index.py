"""The tenant's domains and the lookup tables over its directory (pure: no I/O, no third-party imports)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from sync.models import DirectoryUser

from .hints import Hints, Ids, get_ids, share
from .text import fold, is_valid_upn, strip_marks

__all__ = ["DirectoryIndex", "Domains"]


@dataclass(frozen=True, slots=True)
class Domains:
    """The tenant's domains, lower-case, split by verification state."""

    verified: frozenset[str]
    unverified: frozenset[str] = frozenset()

    @classmethod
    def from_graph(cls, objects: Iterable[Mapping[str, object]]) -> Domains:
        """Build from Graph `GET /domains` objects (`id`, `isVerified`)."""
        verified: set[str] = set()
        unverified: set[str] = set()
        for obj in objects:
            name = str(obj["id"]).lower()
            (verified if obj.get("isVerified", False) else unverified).add(name)
        return cls(frozenset(verified), frozenset(unverified - verified))


def _lower(text: str) -> str:
    """``text.lower()``, but the very same object when it is already lower-case (the index holds it once)."""
    low = text.lower()
    return text if low == text else low


def _same(key: str, *held: str) -> str:
    """``key``, or an equal string the index already holds (a SIP or smtp: address is usually the UPN)."""
    for other in held:
        if key == other:
            return other
    return key


class DirectoryIndex:
    """Lookup tables over the directory, built once per directory version; every key is lower-case."""

    __slots__ = ("by_id", "by_upn", "mail", "sip", "local", "display", "ascii_upn", "skipped", "_hints")

    def __init__(self) -> None:
        self.by_id: dict[str, DirectoryUser] = {}
        self.by_upn: dict[str, DirectoryUser] = {}
        self.mail: Ids = {}  # mail and smtp: proxy addresses
        self.sip: Ids = {}  # SIP: proxy addresses and imAddresses
        self.local: Ids = {}  # UPN local part
        self.display: Ids = {}  # folded display name
        self.ascii_upn: Ids = {}  # UPN without diacritics
        self.skipped: list[DirectoryUser] = []  # users whose UPN fails the syntax rule: never resolved
        self._hints: Hints | None = None  # built on the first suggestion that needs it

    @classmethod
    def build(cls, users: Iterable[DirectoryUser]) -> DirectoryIndex:
        return cls().add(users)

    def add(self, users: Iterable[DirectoryUser]) -> DirectoryIndex:
        """Index more users (a cold start adds the directory page by page); returns self."""
        idx = self
        idx._hints = None  # a new directory version: the suggestion tables are built again when needed
        by_id, by_upn, mail, sip, local = idx.by_id, idx.by_upn, idx.mail, idx.sip, idx.local
        put_mail, put_sip, put_local = mail.setdefault, sip.setdefault, local.setdefault
        for user in users:
            upn = _lower(user.upn)
            uid = user.id
            if upn in by_upn or not is_valid_upn(upn):
                idx.skipped.append(user)
                continue
            by_id[uid] = by_upn[upn] = user
            key = upn.partition("@")[0]
            if put_local(key, uid) != uid:
                share(local, key, uid)
            if user.display_name:
                key = fold(user.display_name)
                if idx.display.setdefault(key, uid) != uid:
                    share(idx.display, key, uid)
            if not upn.isascii():
                key = strip_marks(upn)
                if idx.ascii_upn.setdefault(key, uid) != uid:
                    share(idx.ascii_upn, key, uid)
            primary = _lower(user.mail) if user.mail else ""
            if primary == upn:
                primary = upn
            if primary and put_mail(primary, uid) != uid:
                share(mail, primary, uid)
            for proxy in user.proxy_addresses:
                key = proxy.lower()
                if key.startswith("smtp:"):
                    key = _same(key[5:], upn, primary)
                    if key != primary and put_mail(key, uid) != uid:
                        share(mail, key, uid)
                elif key.startswith("sip:"):
                    key = _same(key[4:], upn, primary)
                    if put_sip(key, uid) != uid:
                        share(sip, key, uid)
            for key in user.im_addresses:
                key = _same(_lower(key).removeprefix("sip:"), upn, primary)
                if put_sip(key, uid) != uid:
                    share(sip, key, uid)
        return idx

    def hints(self) -> Hints:
        """The suggestion tables (separator-free and initials keys), built once per directory version."""
        if self._hints is None:
            self._hints = Hints.build(self.by_upn.items())
        return self._hints

    def __len__(self) -> int:
        return len(self.by_upn)

    def addresses(self, value: str) -> set[str]:
        """Ids of users holding `value` as mail, smtp/SIP proxy or imAddress."""
        return {*get_ids(self.mail, value), *get_ids(self.sip, value)}

    def by_ascii(self, value: str) -> set[str]:
        """Ids of users whose UPN equals `value` once diacritics are removed from both."""
        user = self.by_upn.get(value)
        ids = set(get_ids(self.ascii_upn, value))
        return ids | {user.id} if user is not None else ids

    def display_name(self, value: str) -> set[str]:
        """Ids of users with this display name, also trying "Last, First" as "First Last"."""
        ids = set(get_ids(self.display, fold(value)))
        last, comma, first = value.partition(",")
        if comma and "," not in first:
            ids.update(get_ids(self.display, fold(f"{first} {last}")))
        return ids

    def local_part(self, value: str) -> Collection[str]:
        """Ids of users whose UPN local part is `value`."""
        return get_ids(self.local, value)

    def mail_address(self, value: str) -> Collection[str]:
        """Ids of users holding `value` as mail or smtp: proxy address."""
        return get_ids(self.mail, value)

    def unique(self, ids: Iterable[str]) -> str:
        """The lower-case UPN of the only user in `ids`, or "" when none or several."""
        found = set(ids)
        if len(found) != 1:
            return ""
        return self.by_id[found.pop()].upn.lower()
