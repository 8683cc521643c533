"""UPN normalisation and validation of the Agent list (pure: no I/O, no third-party imports).

The rules are the contract with the fixtures' answer key; in short, each cell goes through
EMPTY -> WHITESPACE -> UNICODE -> PREFIX -> DISPLAY_NAME -> SYNTAX -> domain -> directory -> GUEST -> DISABLED
-> DUPLICATE, and stops at the first error. A row is collected under the *directory's* UPN (lower-case), never
under text taken from the cell, so whatever later builds a lookup from `normalized_upn` only ever sees UPNs that
passed the syntax check (the index refuses directory users whose UPN would not).

`Validator` memoises verdicts per raw cell, because the roster barely changes between one-second cycles.
"""

from __future__ import annotations

import operator
import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from sync.models import CODES, ERROR_CODES, AgentRow, DirectoryUser, ValidationRow

__all__ = [
    "resolved_so_far",
    "DirectoryIndex",
    "Domains",
    "Validator",
    "Verdict",
    "is_valid_upn",
    "judge",
    "normalize",
    "summarize",
    "validate",
]

# Trimmed at both ends: everything str.isspace() knows, plus the invisible characters rosters pick up from
# copy-paste (zero-width space/joiners, word joiner, BOM). All isspace() characters lie below U+3001.
_TRIM = "".join(chr(c) for c in range(0x3001) if chr(c).isspace()) + "\u200b\u200c\u200d\u2060\ufeff\u180e"
_PREFIXES = ("sip:", "mailto:", "smtp:")
_LOCAL = re.compile(r"[a-z0-9'.\-_!#^~]{1,64}")
_DOMAIN = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*")
_NAME_PUNCT = frozenset(" ,.-'\u2019\u02bc\u2010\u2011")
_ORDER = {code: i for i, code in enumerate(CODES)}


def _fold(text: str) -> str:
    """Whitespace-folded, case-folded, NFKC form used to compare display names."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.split()).casefold()


def _strip_marks(text: str) -> str:
    """The text without diacritics (NFKD, combining marks dropped)."""
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def is_valid_upn(value: str) -> bool:
    """True if `value` (already lower-case) is a syntactically valid UPN by the SYNTAX rule."""
    local, at, domain = value.partition("@")
    return bool(
        at
        and _LOCAL.fullmatch(local)
        and local[0] != "."
        and local[-1] != "."
        and ".." not in local
        and _DOMAIN.fullmatch(domain)
    )


def _looks_like_name(value: str) -> bool:
    """No "@", a space or comma, and only letters and name punctuation: someone typed a display name."""
    if "@" in value or (" " not in value and "," not in value):
        return False
    return all(c.isalpha() or c in _NAME_PUNCT for c in value)


def normalize(raw: str | None) -> tuple[str, tuple[str, ...]]:
    """Apply the text steps (trim, NFKC, prefix, lower-case); returns the value and the codes found."""
    if raw is None:
        return "", ("EMPTY",)
    value = raw.strip(_TRIM)
    if not value:
        return "", ("EMPTY",)
    codes: list[str] = []
    if len(value) != len(raw):
        codes.append("WHITESPACE")
    if not value.isascii():
        nfkc = unicodedata.normalize("NFKC", value)
        if nfkc != value:
            codes.append("UNICODE")
            value = nfkc.strip(_TRIM)
    lowered = value.lower()
    if lowered.startswith(_PREFIXES):
        codes.append("PREFIX")
        lowered = lowered.partition(":")[2]
    return lowered, tuple(codes)


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


# key -> one user id, or the set of ids when several users share the key (kept apart to find ambiguity).
# A bare string for the common single-owner case keeps building 100,000 users cheap.
_Ids = dict[str, "str | set[str]"]


def _share(index: _Ids, key: str, uid: str) -> None:
    """Record that `uid` also holds `key` (called only when setdefault found another owner)."""
    cur = index[key]
    if isinstance(cur, str):
        index[key] = {cur, uid}
    else:
        cur.add(uid)


def _get(index: _Ids, key: str) -> Collection[str]:
    ids = index.get(key)
    if ids is None:
        return ()
    return (ids,) if isinstance(ids, str) else ids


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

    __slots__ = ("by_id", "by_upn", "mail", "sip", "local", "display", "ascii_upn", "skipped")

    def __init__(self) -> None:
        self.by_id: dict[str, DirectoryUser] = {}
        self.by_upn: dict[str, DirectoryUser] = {}
        self.mail: _Ids = {}  # mail and smtp: proxy addresses
        self.sip: _Ids = {}  # SIP: proxy addresses and imAddresses
        self.local: _Ids = {}  # UPN local part
        self.display: _Ids = {}  # folded display name
        self.ascii_upn: _Ids = {}  # UPN without diacritics
        self.skipped: list[DirectoryUser] = []  # users whose UPN fails the syntax rule: never resolved

    @classmethod
    def build(cls, users: Iterable[DirectoryUser]) -> DirectoryIndex:
        return cls().add(users)

    def add(self, users: Iterable[DirectoryUser]) -> DirectoryIndex:
        """Index more users (a cold start adds the directory page by page); returns self."""
        idx = self
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
                _share(local, key, uid)
            if user.display_name:
                key = _fold(user.display_name)
                if idx.display.setdefault(key, uid) != uid:
                    _share(idx.display, key, uid)
            if not upn.isascii():
                key = _strip_marks(upn)
                if idx.ascii_upn.setdefault(key, uid) != uid:
                    _share(idx.ascii_upn, key, uid)
            primary = _lower(user.mail) if user.mail else ""
            if primary == upn:
                primary = upn
            if primary and put_mail(primary, uid) != uid:
                _share(mail, primary, uid)
            for proxy in user.proxy_addresses:
                key = proxy.lower()
                if key.startswith("smtp:"):
                    key = _same(key[5:], upn, primary)
                    if key != primary and put_mail(key, uid) != uid:
                        _share(mail, key, uid)
                elif key.startswith("sip:"):
                    key = _same(key[4:], upn, primary)
                    if put_sip(key, uid) != uid:
                        _share(sip, key, uid)
            for key in user.im_addresses:
                key = _same(_lower(key).removeprefix("sip:"), upn, primary)
                if put_sip(key, uid) != uid:
                    _share(sip, key, uid)
        return idx

    def __len__(self) -> int:
        return len(self.by_upn)

    def addresses(self, value: str) -> set[str]:
        """Ids of users holding `value` as mail, smtp/SIP proxy or imAddress."""
        return {*_get(self.mail, value), *_get(self.sip, value)}

    def by_ascii(self, value: str) -> set[str]:
        """Ids of users whose UPN equals `value` once diacritics are removed from both."""
        user = self.by_upn.get(value)
        ids = set(_get(self.ascii_upn, value))
        return ids | {user.id} if user is not None else ids

    def display_name(self, value: str) -> set[str]:
        """Ids of users with this display name, also trying "Last, First" as "First Last"."""
        ids = set(_get(self.display, _fold(value)))
        last, comma, first = value.partition(",")
        if comma and "," not in first:
            ids.update(_get(self.display, _fold(f"{first} {last}")))
        return ids

    def local_part(self, value: str) -> Collection[str]:
        """Ids of users whose UPN local part is `value`."""
        return _get(self.local, value)

    def mail_address(self, value: str) -> Collection[str]:
        """Ids of users holding `value` as mail or smtp: proxy address."""
        return _get(self.mail, value)

    def unique(self, ids: Iterable[str]) -> str:
        """The lower-case UPN of the only user in `ids`, or "" when none or several."""
        found = set(ids)
        if len(found) != 1:
            return ""
        return self.by_id[found.pop()].upn.lower()


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judgement on one raw cell, independent of its position (DUPLICATE is decided later)."""

    normalized_upn: str
    codes: tuple[str, ...]
    suggestion: str = ""
    user_id: str | None = None


def _error(codes: Sequence[str], code: str, suggestion: str = "") -> Verdict:
    return Verdict("", (*codes, code), suggestion)


def _domain_suggestion(value: str, directory: DirectoryIndex) -> str:
    return directory.unique(directory.mail_address(value)) or directory.unique(
        directory.local_part(value.partition("@")[0])
    )


def _syntax_suggestion(value: str, directory: DirectoryIndex) -> str:
    plain = _strip_marks(value)
    found = directory.unique(directory.by_ascii(plain))
    if not found and "@" not in value and " " not in value:
        found = directory.unique(directory.local_part(value)) or directory.unique(directory.local_part(plain))
    return found


def judge(raw: str | None, domains: Domains, directory: DirectoryIndex) -> Verdict:
    """Every rule but DUPLICATE, for one cell."""
    value, codes = normalize(raw)
    if codes and codes[0] == "EMPTY":
        return Verdict("", codes)
    if _looks_like_name(value):
        return _error(codes, "DISPLAY_NAME", directory.unique(directory.display_name(value)))
    if not is_valid_upn(value):
        return _error(codes, "SYNTAX", _syntax_suggestion(value, directory))
    domain = value.partition("@")[2]
    if domain not in domains.verified:
        code = "UNVERIFIED_DOMAIN" if domain in domains.unverified else "UNKNOWN_DOMAIN"
        return _error(codes, code, _domain_suggestion(value, directory))
    found: list[str] = list(codes)
    user = directory.by_upn.get(value)
    suggestion = ""
    if user is None:
        upn = directory.unique(directory.addresses(value))
        if not upn:
            local = directory.local_part(value.partition("@")[0])
            return _error(codes, "NOT_FOUND", directory.unique(local))
        user = directory.by_upn[upn]
        found.append("NOT_UPN")
        suggestion = upn
    if user.user_type.lower() == "guest" or "#ext#" in user.upn.lower():
        found.append("GUEST")
    if not user.account_enabled:
        found.append("DISABLED")
    found.sort(key=_ORDER.__getitem__)
    return Verdict(user.upn.lower(), tuple(found), suggestion, user.id)


def _row(item_id: int, raw: str | None, verdict: Verdict, duplicate: bool) -> ValidationRow:
    codes = (*verdict.codes, "DUPLICATE") if duplicate else verdict.codes
    if not codes:
        status, severity = "ok", ""
    elif ERROR_CODES.intersection(codes):
        status, severity = "invalid", "error"
    else:
        status, severity = "fixed", "warning"
    return ValidationRow(
        item_id, raw, verdict.normalized_upn, status, codes, severity, verdict.suggestion, verdict.user_id
    )


def _in_order(rows: Sequence[AgentRow]) -> Sequence[AgentRow]:
    ids = [r.item_id for r in rows]
    if all(map(operator.lt, ids, ids[1:])):
        return rows
    return sorted(rows, key=operator.attrgetter("item_id"))


class Validator:
    """Validates rosters against one (domains, directory) version, memoising per raw cell and per item.

    A call on an unchanged roster (the same AgentRow objects) returns the previous result after an identity
    check; a roster of new objects with the same cells costs one verdict lookup per row. Build a new
    Validator when the domains or the directory change (the verdicts depend on them).
    """

    def __init__(self, domains: Domains, directory: DirectoryIndex) -> None:
        self.domains = domains
        self.directory = directory
        self._verdicts: dict[str | None, Verdict] = {}
        self._rows: dict[int, tuple[str | None, bool, ValidationRow]] = {}
        self._last_in: list[AgentRow] = []
        self._last_out: list[ValidationRow] = []

    def verdict(self, raw: str | None) -> Verdict:
        v = self._verdicts.get(raw)
        if v is None:
            v = self._verdicts[raw] = judge(raw, self.domains, self.directory)
        return v

    def validate(self, rows: Sequence[AgentRow]) -> list[ValidationRow]:
        """One ValidationRow per input row, in item_id order."""
        last = self._last_in
        if len(rows) == len(last) and all(map(operator.is_, rows, last)):
            return list(self._last_out)
        given, rows = rows, _in_order(rows)
        if len(self._verdicts) > 2 * len(rows) + 1024:  # the roster moved on: forget cells no longer in it
            self._verdicts.clear()
            self._rows.clear()
        verdicts, cache, seen = self._verdicts, self._rows, set()
        out: list[ValidationRow] = []
        append = out.append
        for r in rows:
            raw = r.raw_upn
            v = verdicts.get(raw) or self.verdict(raw)
            upn = v.normalized_upn
            dup = upn in seen
            if upn and not dup:
                seen.add(upn)
            hit = cache.get(r.item_id)
            if hit is not None and hit[1] is dup and hit[0] == raw:
                append(hit[2])
            else:
                row = _row(r.item_id, raw, v, dup)
                cache[r.item_id] = (raw, dup, row)
                append(row)
        self._last_in, self._last_out = list(given), out
        return list(out)


def resolved_so_far(rows: Sequence[AgentRow], domains: Domains, directory: DirectoryIndex,
                    memo: dict[str | None, str | Verdict]) -> list[ValidationRow]:
    """The rows whose UPN is already in a directory that is still being read, judged as the full validation
    will judge them; the others are left out, not condemned (a cold start collects these first).

    ``memo`` keeps each raw cell's normalised value, or its verdict once found, across calls.
    """
    out: list[ValidationRow] = []
    by_upn = directory.by_upn
    for r in rows:
        raw = r.raw_upn
        seen = memo.get(raw)
        if seen is None:
            seen = memo[raw] = normalize(raw)[0]
        if isinstance(seen, str):
            if seen not in by_upn:
                continue
            seen = memo[raw] = judge(raw, domains, directory)
        if seen.user_id:
            out.append(_row(r.item_id, raw, seen, False))
    return out


def validate(rows: Sequence[AgentRow], domains: Domains, directory: DirectoryIndex) -> list[ValidationRow]:
    """Apply every rule to a roster; DUPLICATE goes to later occurrences by item_id. Output in item_id order."""
    return Validator(domains, directory).validate(rows)


def summarize(rows: Iterable[ValidationRow]) -> dict[str, int]:
    """Count of rows per code, in reporting order (codes that did not occur are left out)."""
    counts = Counter(code for row in rows for code in row.codes)
    return {code: counts[code] for code in CODES if counts[code]}
