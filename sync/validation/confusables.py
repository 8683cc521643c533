"""Cyrillic and Greek letters that look like ASCII letters, and the ASCII skeleton of a value.

The table is the part of Unicode's confusables data (UTS #39, confusables.txt) that maps a single Cyrillic
or Greek character to a single ASCII letter or digit, for the characters that survive NFKC (the UNICODE
step runs first). Upper-case forms map to the ASCII letter they resemble, which is not always the
lower case of the one their lower case resembles (Greek capital nu looks like N, small nu like v).
"""

from __future__ import annotations

import unicodedata

__all__ = ["CONFUSABLES", "confusable_chars", "describe", "skeleton"]

_SHOWN = 3  # look-alikes named in a finding; the rest are counted

CONFUSABLES: dict[str, str] = {
    # Cyrillic small letters
    "\u0430": "a", "\u0435": "e", "\u043e": "o",
    "\u0440": "p", "\u0441": "c", "\u0443": "y", "\u0445": "x", "\u0455": "s", "\u0456": "i",
    "\u0458": "j", "\u04bb": "h", "\u04cf": "l", "\u0501": "d", "\u051b": "q",
    "\u051d": "w", "\u0475": "v", "\u04ae": "y", "\u04af": "y", "\u0433": "r",
    # Cyrillic capital letters
    "\u0410": "a", "\u0412": "b", "\u0415": "e", "\u041a": "k", "\u041c": "m", "\u041d": "h", "\u041e": "o",
    "\u0420": "p", "\u0421": "c", "\u0422": "t", "\u0423": "y", "\u0425": "x", "\u0405": "s", "\u0406": "i",
    "\u0408": "j", "\u04c0": "l", "\u0500": "d", "\u051a": "q", "\u051c": "w", "\u0417": "3",
    # Greek small letters
    "\u03b1": "a", "\u03b3": "y", "\u03b9": "i", "\u03bd": "v", "\u03bf": "o", "\u03c1": "p",
    "\u03c3": "o", "\u03f2": "c", "\u03f3": "j", "\u03c7": "x",
    # Greek capital letters
    "\u0391": "a", "\u0392": "b", "\u0395": "e", "\u0396": "z", "\u0397": "h", "\u0399": "i", "\u039a": "k",
    "\u039c": "m", "\u039d": "n", "\u039f": "o", "\u03a1": "p", "\u03a4": "t", "\u03a5": "y", "\u03a7": "x",
    "\u03f9": "c", "\u037f": "j",
}


def confusable_chars(value: str) -> list[tuple[int, str]]:
    """(1-based position, character) of each look-alike in `value`."""
    if value.isascii():
        return []
    return [(i, c) for i, c in enumerate(value, 1) if c in CONFUSABLES]


def skeleton(value: str) -> str:
    """`value` lower-cased, with every look-alike replaced by the ASCII character it resembles."""
    return "".join(CONFUSABLES.get(c, c) for c in value).lower()


def describe(found: list[tuple[int, str]]) -> str:
    """E.g. "U+0430 CYRILLIC SMALL LETTER A at position 2"."""
    text = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, '?')} at position {i}" for i, c in found[:_SHOWN])
    return text + (f" and {len(found) - _SHOWN} more" if len(found) > _SHOWN else "")
