"""The text steps of UPN validation: trimming, NFKC, unwrapping what people paste around an address.

Pure: no I/O, no third-party imports. ``unwrap`` returns the address with its case kept (the look-alike
check needs it: Greek capital N looks like N, its lower case like v); ``normalize`` lower-cases it.
"""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import unquote

__all__ = ["CONTROL", "addresses_in", "fold", "is_valid_upn", "looks_like_name", "normalize", "strip_marks", "unwrap"]

# Trimmed at both ends: everything str.isspace() knows, plus the invisible characters rosters pick up from
# copy-paste (zero-width space/joiners, word joiner, BOM). All isspace() characters lie below U+3001.
TRIM = "".join(chr(c) for c in range(0x3001) if chr(c).isspace()) + "\u200b\u200c\u200d\u2060\ufeff\u180e"
PREFIXES = ("sip:", "mailto:", "smtp:")
# C0 (tab and line breaks aside: whitespace and separators), DEL, C1: never part of a UPN, and never written raw
# into an output (a cell may carry them from the Agent list or the directory: NUL, escape, ...)
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
_LOCAL = re.compile(r"[a-z0-9'.\-_!#^~]{1,64}")
_DOMAIN = re.compile(r"[a-z0-9-]+(?:\.[a-z0-9-]+)*")
_NAME_PUNCT = frozenset(" ,.-'\u2019\u02bc\u2010\u2011")
# Pairs of quotes a CSV export, a spreadsheet or a word processor puts around a cell.
_QUOTES = {'"': '"', "'": "'", "`": "`", "\u201c": "\u201d", "\u201d": "\u201d", "\u2018": "\u2019",
           "\u00ab": "\u00bb", "\u201e": "\u201c"}
_ANGLE = re.compile(r"(?s)(.*?)<([^<>]*)>")
# A cell no text step changes (the common case): checked first, so a clean roster costs one match per cell.
_PLAIN = re.compile(r"[A-Za-z0-9'.\-_!#^~]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*")
_ESCAPE = re.compile(r"%[0-9a-fA-F]{2}")
# An address-like token: something, "@", something, with none of the characters that separate addresses.
_ADDRESS = re.compile(r"[^\s;,<>\"'()\[\]]+@[^\s;,<>\"'()\[\]]+")


def fold(text: str) -> str:
    """Whitespace-folded, case-folded, NFKC form used to compare display names."""
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
    return " ".join(text.split()).casefold()


def strip_marks(text: str) -> str:
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


def looks_like_name(value: str) -> bool:
    """No "@", a space or comma, and only letters and name punctuation: someone typed a display name."""
    if "@" in value or (" " not in value and "," not in value):
        return False
    return all(c.isalpha() or c in _NAME_PUNCT for c in value)


def addresses_in(value: str) -> list[str]:
    """The address-like tokens of a cell (two or more: the cell names several people)."""
    return _ADDRESS.findall(value)


def _strip_prefixes(value: str) -> tuple[str, int]:
    count = 0
    while value.lower().startswith(PREFIXES):
        value = value.partition(":")[2].lstrip(TRIM)
        count += 1
    return value, count


def _plausible(inside: str) -> bool:
    """The text inside angle brackets is taken as the address only when it reads as one."""
    value = _strip_prefixes(inside.strip(TRIM))[0].lower().rstrip(".")
    return is_valid_upn(value) or (not value.isascii() and value.count("@") == 1 and " " not in value)


def _peel(value: str, codes: list[str]) -> tuple[str, int]:
    """Remove one layer of quotes, angle brackets or prefixes; returns the value and the prefixes removed."""
    first, last = value[:1], value[-1:]
    if len(value) >= 2 and _QUOTES.get(first) == last:
        codes.append("QUOTED")
        return value[1:-1], 0
    angle = _ANGLE.fullmatch(value)
    if angle and _plausible(angle.group(2)):
        codes.append("ANGLE_ADDRESS")
        return angle.group(2), 0
    stripped, count = _strip_prefixes(value)
    if count:
        codes.append("PREFIX")
    return stripped, count


def unwrap(raw: str | None) -> tuple[str, tuple[str, ...]]:
    """Apply the text steps; returns the address as typed (case kept) and the codes found, in check order.

    EMPTY -> WHITESPACE -> UNICODE, then quotes, ``Name <address>`` and prefixes (peeled until none is
    left: QUOTED, ANGLE_ADDRESS, PREFIX and REPEATED_PREFIX when more than one prefix was removed), then
    URL_ENCODED and TRAILING_DOT. A cell holding several addresses is left whole (the MULTIPLE rule).
    """
    if raw is None:
        return "", ("EMPTY",)
    if _PLAIN.fullmatch(raw):
        return raw, ()
    value = raw.strip(TRIM)
    if not value:
        return "", ("EMPTY",)
    codes: list[str] = []
    if len(value) != len(raw):
        codes.append("WHITESPACE")
    if not value.isascii():
        nfkc = unicodedata.normalize("NFKC", value)
        if nfkc != value:
            codes.append("UNICODE")
            value = nfkc.strip(TRIM)
    if len(addresses_in(value)) > 1:
        return value, tuple(codes)
    prefixes = 0
    while value:
        before = value
        value, removed = _peel(value, codes)
        prefixes += removed
        trimmed = value.strip(TRIM)
        if trimmed != value and "WHITESPACE" not in codes:
            codes.append("WHITESPACE")
        value = trimmed
        if value == before:
            break
    if prefixes > 1:
        codes.append("REPEATED_PREFIX")
    if _ESCAPE.search(value):
        decoded = unquote(value, errors="strict") if _decodes(value) else value
        if decoded != value:
            codes.append("URL_ENCODED")
            value = decoded.strip(TRIM)
    if value.endswith(".") and "@" in value and value.rstrip(".").rpartition("@")[2]:
        codes.append("TRAILING_DOT")
        value = value.rstrip(".")
    return value, tuple(dict.fromkeys(codes))


def _decodes(value: str) -> bool:
    try:
        unquote(value, errors="strict")
    except UnicodeDecodeError:
        return False
    return True


def normalize(raw: str | None) -> tuple[str, tuple[str, ...]]:
    """Apply the text steps (trim, NFKC, unwrapping, lower-case); returns the value and the codes found."""
    value, codes = unwrap(raw)
    return value.lower(), codes
