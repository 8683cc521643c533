"""Who a cell that names nobody probably meant: one user is a suggestion, several are a tie, shown as such.

Each rule runs only when the ones before it found nobody; the first that finds someone decides (a tie
stops the search too: a weaker rule must not break a stronger rule's tie by luck).

1. the same local part on another of the tenant's domains (``oliver.smith@contoso.com`` -> ``.co.uk``);
2. the same name with other separators, or none (``ali_khan``, ``alikhan`` -> ``ali.khan``);
3. one typo in the local part, same domain: a character missing, extra, wrong, or two swapped
   (``jhon.smith`` -> ``john.smith``), against UPNs and mail addresses; local parts of 5 characters or more;
4. first initial + surname, same domain (``c.jones``, ``cjones`` -> Chris Jones).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from .hints import edits, get_ids, separator_free, separator_variants
from .index import DirectoryIndex
from .text import addresses_in, is_valid_upn, looks_like_name, strip_marks

__all__ = ["NOBODY", "Guess", "guess", "resolve", "syntax_guess", "who"]

_SHOWN = 5  # candidates listed in a tie; the rest are counted
_MIN_TYPO = 5  # shorter local parts are one typo away from too many people


@dataclass(frozen=True, slots=True)
class Guess:
    """Lower-case UPNs of the users a cell may mean: one is a suggestion, several a tie."""

    upns: tuple[str, ...] = ()

    @property
    def suggestion(self) -> str:
        return self.upns[0] if len(self.upns) == 1 else ""

    @property
    def candidates(self) -> str:
        """``"ambiguous: a, b"`` for a tie, else ""."""
        if len(self.upns) < 2:
            return ""
        shown = ", ".join(self.upns[:_SHOWN])
        more = len(self.upns) - _SHOWN
        return f"ambiguous: {shown}" + (f" and {more} more" if more > 0 else "")

    def __bool__(self) -> bool:
        return bool(self.upns)


NOBODY = Guess()


def guess(directory: DirectoryIndex, ids: Iterable[str]) -> Guess:
    """The users of `ids` as a Guess (sorted UPNs)."""
    by_id = directory.by_id
    return Guess(tuple(sorted({by_id[i].upn.lower() for i in ids})))


def _lookup(locals_: Iterable[str], at: str, directory: DirectoryIndex) -> set[str]:
    """Ids of the users whose UPN, mail or smtp: address is one of `locals_` on the domain `at`."""
    by_upn, mail = directory.by_upn, directory.mail
    found: set[str] = set()
    for local in locals_:
        key = local + at
        user = by_upn.get(key)
        if user is not None:
            found.add(user.id)
        elif key in mail:
            found.update(get_ids(mail, key))
    return found


def who(value: str, directory: DirectoryIndex) -> Guess:
    """Suggestion rules for a valid UPN that is nobody's UPN or address (see the module docstring)."""
    local, _, domain = value.partition("@")
    at = "@" + domain
    elsewhere = directory.local_part(local)
    if elsewhere:
        return guess(directory, elsewhere)
    ids: Collection[str] = (
        _lookup(separator_variants(local), at, directory)
        or (_lookup(edits(local), at, directory) if len(local) >= _MIN_TYPO else ())
        or get_ids(directory.hints().initials, separator_free(local) + at)
    )
    return guess(directory, ids)


def resolve(value: str, directory: DirectoryIndex) -> Guess:
    """The user a valid (repaired or look-alike-free) UPN names: as UPN, as address, or by the rules."""
    user = directory.by_upn.get(value)
    if user is not None:
        return Guess((value,))
    ids = directory.addresses(value)
    return guess(directory, ids) if ids else who(value, directory)


def _repairs(value: str) -> list[str]:
    """What a malformed address most likely was: doubled "@" or dots, dots at the edges, inner spaces."""
    fixed = re.sub(r"\.{2,}", ".", re.sub(r"@{2,}", "@", value))
    fixed = fixed.replace(".@", "@").replace("@.", "@").strip(".")
    out = [fixed]
    if " " in fixed:
        squeezed = " ".join(fixed.split())
        out = [squeezed.replace(" ", sep) for sep in (".", "", "_", "-")]
    return [v for v in dict.fromkeys(out) if v != value or " " not in v]


def syntax_guess(value: str, directory: DirectoryIndex) -> Guess:
    """Who a cell that fails the syntax rule probably meant."""
    plain = strip_marks(value)
    found = directory.by_ascii(plain)
    if found:
        return guess(directory, found)
    bare = value[:-1] if value.endswith("@") and value.count("@") == 1 else value
    if "@" not in bare and " " not in bare:
        ids = directory.local_part(bare) or directory.local_part(strip_marks(bare))
        return guess(directory, ids)
    for fixed in _repairs(plain):
        if is_valid_upn(fixed):
            g = resolve(fixed, directory)
            if g:
                return g
    tokens = addresses_in(value)  # one address among other text: "ali.khan@contoso.com (Ali)"
    if len(tokens) == 1 and tokens[0] != value and is_valid_upn(tokens[0]):
        g = resolve(tokens[0], directory)
        if g:
            return g
    name = value.partition("<")[0].strip(" \"'")
    if "<" in value and looks_like_name(name):
        return guess(directory, directory.display_name(name))
    return NOBODY
