"""Where suggestions look: who a cell that names nobody probably meant (pure: no I/O, no third-party imports).

One table, built lazily, once per directory version, only when a cell needs it (`DirectoryIndex.hints`):
``initials``, first initial + surname (from the UPN's own ``given.surname`` form and from the display name,
"Chris Jones" or "Jones, Chris") -> users, so ``c.jones`` and ``cjones`` find Chris Jones (and Claire
Jones). Keys are scoped to the domain (``key@domain``): a suggestion never moves a person to another
domain by guesswork.

Separator variants and typos need no table: `separator_variants` and `edits` list the strings a cell may
have been meant as, and each is looked up in the UPN and mail tables the index already has. That costs
some hundred (separators) or about a thousand (typos) dictionary lookups per cell that needs it, and
nothing for the cells that do not.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection, Iterable, Iterator

from sync.models import DirectoryUser

from .text import fold, strip_marks

__all__ = ["Hints", "Ids", "edits", "get_ids", "separator_free", "separator_variants", "share"]

# key -> one user id, or the set of ids when several users share the key (kept apart to find ambiguity).
# A bare string for the common single-owner case keeps building 100,000 users cheap.
Ids = dict[str, "str | set[str]"]

_SEPARATORS = str.maketrans("", "", "._-'")
_SPLIT = re.compile(r"[._-]")
# Everything but letters, digits and spaces goes when a display name is split into words.
_PUNCT = str.maketrans("", "", "".join(chr(c) for c in range(128) if not chr(c).isalnum() and chr(c) != " "))
# What a local part is made of, for inserted and replaced characters (rarer ones are left out).
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789.-_"


def share(index: Ids, key: str, uid: str) -> None:
    """Record that `uid` also holds `key` (called only when setdefault found another owner)."""
    cur = index[key]
    if isinstance(cur, str):
        index[key] = {cur, uid}
    else:
        cur.add(uid)


def get_ids(index: Ids, key: str) -> Collection[str]:
    ids = index.get(key)
    if ids is None:
        return ()
    return (ids,) if isinstance(ids, str) else ids


def separator_free(local: str) -> str:
    """The local part without ``.``, ``_``, ``-`` and ``'``."""
    return local.translate(_SEPARATORS)


def _name_words(display_name: str) -> list[str]:
    """Given name first, surname last: "Jones, Chris" -> ["chris", "jones"]; accents and punctuation dropped."""
    last, comma, first = display_name.partition(",")
    if comma and "," not in first:
        display_name = f"{first} {last}"
    text = display_name.lower() if display_name.isascii() else strip_marks(fold(display_name))
    return text.translate(_PUNCT).split()


class Hints:
    """The suggestion tables of one directory version."""

    __slots__ = ("initials",)

    def __init__(self) -> None:
        self.initials: Ids = {}

    @classmethod
    def build(cls, users: Iterable[tuple[str, DirectoryUser]]) -> Hints:
        """From (lower-case UPN, user) pairs whose UPNs passed the syntax rule."""
        hints = cls()
        initials = hints.initials
        put = initials.setdefault
        for upn, user in users:
            local, _, domain = upn.partition("@")
            if "#" in local:  # a guest: its local part is an address, not a name
                continue
            uid = user.id
            at = "@" + domain
            if "_" in local or "-" in local or "'" in local:
                local = local.replace("_", ".").replace("-", ".").replace("'", "")
            first, dot, rest = local.partition(".")
            last = rest.rpartition(".")[2]
            own = first[0] + last + at if dot and last and first[:1].isalpha() else ""
            if own and put(own, uid) != uid:
                share(initials, own, uid)
            name = user.display_name
            if not name:
                continue
            head, space, tail = name.rpartition(" ")
            if space and head[:1].isalpha() and head[0].isascii() and tail.isalpha() and tail.isascii() \
                    and "," not in head:
                key = head[0].lower() + tail.lower() + at  # "James Smith": the common case, without splitting
            else:
                words = _name_words(name)
                key = words[0][0] + words[-1] + at if len(words) > 1 else own
            if key != own and put(key, uid) != uid:
                share(initials, key, uid)
        return hints


def separator_variants(local: str) -> set[str]:
    """The local part with its separators changed or dropped, or one separator added; ``local`` excluded."""
    bare = local.translate(_SEPARATORS)
    out = {bare}
    for i in range(1, len(bare)):
        out.update(bare[:i] + c + bare[i:] for c in "._-")
    words = _SPLIT.split(local)
    if 1 < len(words) <= 4:
        for combo in itertools.product(("", ".", "_", "-"), repeat=len(words) - 1):
            out.add(words[0] + "".join(c + w for c, w in zip(combo, words[1:], strict=True)))
        for i in range(1, len(local)):
            if local[i - 1] not in "._-" and local[i] not in "._-":
                out.update(local[:i] + c + local[i:] for c in "._-")
    out.discard(local)
    return out


def edits(word: str) -> Iterator[str]:
    """Every string one edit from `word` (delete, swap neighbours, replace, insert), ``word`` itself excluded."""
    n = len(word)
    for i in range(n):
        yield word[:i] + word[i + 1:]
    for i in range(n - 1):
        if word[i] != word[i + 1]:
            yield word[:i] + word[i + 1] + word[i] + word[i + 2:]
    for i in range(n):
        head, tail, here = word[:i], word[i + 1:], word[i]
        for c in _ALPHABET:
            if c != here:
                yield head + c + tail
    for i in range(n + 1):
        head, tail = word[:i], word[i:]
        for c in _ALPHABET:
            yield head + c + tail
