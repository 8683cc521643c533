"""The UPN rules for one cell, and a memoising Validator for whole rosters (pure: no I/O).

Each cell goes through EMPTY -> WHITESPACE -> UNICODE -> MULTIPLE -> QUOTED / ANGLE_ADDRESS / PREFIX /
REPEATED_PREFIX -> URL_ENCODED -> TRAILING_DOT -> DISPLAY_NAME -> CONFUSABLE -> SYNTAX -> domain -> directory
-> GUEST -> DISABLED -> DUPLICATE, and stops at the first error. A row is collected under the *directory's*
UPN (lower-case), never under text taken from the cell, so whatever later builds a lookup from
`normalized_upn` only ever sees UPNs that passed the syntax check (the index refuses directory users whose
UPN would not).
"""

from __future__ import annotations

import operator
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sync.models import CODES, ERROR_CODES, AgentRow, ValidationRow

from .confusables import confusable_chars, describe, skeleton
from .index import DirectoryIndex, Domains
from .suggest import NOBODY, Guess, guess, resolve, syntax_guess, who
from .text import CONTROL, addresses_in, is_valid_upn, looks_like_name, normalize, strip_marks, unwrap

__all__ = ["Validator", "Verdict", "judge", "resolved_so_far", "summarize", "validate"]

_ORDER = {code: i for i, code in enumerate(CODES)}
_PARTS = 10  # addresses of a MULTIPLE cell resolved and listed; the rest are counted
_SEPARATED = re.compile(r"[\s;,<]")  # only a cell with one of these (or two "@") can hold several addresses


@dataclass(frozen=True, slots=True)
class Verdict:
    """The judgement on one raw cell, independent of its position (DUPLICATE is decided later)."""

    normalized_upn: str
    codes: tuple[str, ...]
    suggestion: str = ""
    user_id: str | None = None
    candidates: str = ""
    detail: str = ""


def _sorted(codes: Sequence[str]) -> tuple[str, ...]:
    if len(codes) < 2:
        return tuple(codes)
    return tuple(sorted(codes, key=_ORDER.__getitem__))


def _error(codes: Sequence[str], code: str, found: Guess = NOBODY, detail: str = "") -> Verdict:
    return Verdict("", _sorted((*codes, code)), found.suggestion, None, found.candidates, detail)


def _domain_guess(value: str, directory: DirectoryIndex) -> Guess:
    ids = directory.mail_address(value) or directory.local_part(value.partition("@")[0])
    return guess(directory, ids)


def _shown(token: str) -> str:
    """A cell's text as a finding may repeat it: printable, and at most 80 characters."""
    if not token.isprintable():
        token = "".join(c if c.isprintable() else "\ufffd" for c in token)
    return token if len(token) <= 80 else token[:79] + "\u2026"


def _part(token: str, domains: Domains, directory: DirectoryIndex) -> str:
    """One address of a MULTIPLE cell and whom it names: "a@x -> a@x", "b@x -> NOT_FOUND, suggestion c@x"."""
    v = judge(token, domains, directory)
    shown = _shown(token)
    if v.normalized_upn:
        return f"{shown} -> {v.normalized_upn}"
    error = next((c for c in v.codes if c in ERROR_CODES), "")
    if v.suggestion:
        return f"{shown} -> {error}, suggestion {v.suggestion}"
    if v.candidates:
        return f"{shown} -> {error}, {v.candidates}"
    return f"{shown} -> {error}"


def _multiple(value: str, codes: Sequence[str], domains: Domains, directory: DirectoryIndex) -> Verdict:
    tokens = list(dict.fromkeys(addresses_in(value)))
    parts = [_part(t, domains, directory) for t in tokens[:_PARTS]]
    if len(tokens) > _PARTS:
        parts.append(f"and {len(tokens) - _PARTS} more")
    return Verdict("", _sorted((*codes, "MULTIPLE")), "", None, "; ".join(parts),
                   f"{len(tokens)} addresses in one cell")


def _look_alike(cased: str, codes: Sequence[str], directory: DirectoryIndex) -> Verdict | None:
    found = confusable_chars(cased)
    if not found:
        return None
    plain = skeleton(cased)
    if not plain.isascii():
        plain = strip_marks(plain)
    if not is_valid_upn(plain):
        return None
    return _error(codes, "CONFUSABLE", resolve(plain, directory), describe(found))


MAX_CELL = 1024  # characters; a UPN has at most 113, so a longer cell is a paste gone wrong


def judge(raw: str | None, domains: Domains, directory: DirectoryIndex) -> Verdict:
    """Every rule but DUPLICATE, for one cell."""
    if raw is not None and len(raw) > MAX_CELL:
        return Verdict("", ("TOO_LONG",), detail=f"{len(raw):,} characters (at most {MAX_CELL:,}; a UPN has at "
                                                  "most 113)")
    if raw is not None and (bad := _control_chars(raw)):
        clean = judge(CONTROL.sub("", raw), domains, directory)
        upn = clean.normalized_upn if clean.user_id else clean.suggestion
        meant = Guess((upn,)) if upn else NOBODY
        return _error((), "CONTROL_CHAR", meant, bad)
    cased, codes = unwrap(raw)
    if codes and codes[0] == "EMPTY":
        return Verdict("", codes)
    value = cased.lower()
    if (value.count("@") > 1 or _SEPARATED.search(value)) and len(addresses_in(value)) > 1:
        return _multiple(value, codes, domains, directory)
    if looks_like_name(value):
        ids = directory.display_name(value)
        if not ids and confusable_chars(cased):  # "Mаria Garcia" typed with a Cyrillic а
            ids = directory.display_name(skeleton(cased))
        return _error(codes, "DISPLAY_NAME", guess(directory, ids))
    if not is_valid_upn(value):
        return _look_alike(cased, codes, directory) or _error(codes, "SYNTAX", syntax_guess(value, directory))
    domain = value.partition("@")[2]
    if domain not in domains.verified:
        code = "UNVERIFIED_DOMAIN" if domain in domains.unverified else "UNKNOWN_DOMAIN"
        return _error(codes, code, _domain_guess(value, directory))
    found: list[str] = list(codes)
    user = directory.by_upn.get(value)
    suggestion = ""
    if user is None:
        ids = directory.addresses(value)
        if len(ids) != 1:
            return _error(codes, "NOT_FOUND", guess(directory, ids) if ids else who(value, directory))
        user = directory.by_id[ids.pop()]
        found.append("NOT_UPN")
        suggestion = user.upn.lower()
    if user.user_type.lower() == "guest" or "#ext#" in user.upn.lower():
        found.append("GUEST")
    if not user.account_enabled:
        found.append("DISABLED")
    return Verdict(user.upn.lower(), _sorted(found), suggestion, user.id)


def _control_chars(raw: str) -> str:
    """'U+0000 at position 4, ...' for the control characters in a cell (at most three named), or ''."""
    hits = [(m.start() + 1, ord(m.group())) for m in CONTROL.finditer(raw)]
    if not hits:
        return ""
    named = ", ".join(f"U+{code:04X} at position {pos}" for pos, code in hits[:3])
    return named + (f" and {len(hits) - 3} more" if len(hits) > 3 else "")


def _row(item_id: int, raw: str | None, verdict: Verdict, duplicate: bool) -> ValidationRow:
    codes = (*verdict.codes, "DUPLICATE") if duplicate else verdict.codes
    if not codes:
        status, severity = "ok", ""
    elif ERROR_CODES.intersection(codes):
        status, severity = "invalid", "error"
    else:
        status, severity = "fixed", "warning"
    return ValidationRow(item_id, raw, verdict.normalized_upn, status, codes, severity, verdict.suggestion,
                         verdict.user_id, verdict.candidates, verdict.detail)


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
