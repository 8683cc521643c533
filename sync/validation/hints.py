"""Tables for suggestions: who a cell that names nobody probably meant (pure: no I/O, no third-party imports).

Built lazily, once per directory version, only when a cell needs them (`DirectoryIndex.hints`). Keys are
scoped to the domain (``key@domain``): a suggestion never moves a person to another domain by guesswork.

- ``sep``: the UPN local part without separators (``.``, ``_``, ``-``, ``'``): ``ali_khan`` and
  ``alikhan`` find ``ali.khan``.
- ``initials``: first initial + surname, from the display name ("Chris Jones", "Jones, Chris") and from
  the UPN's own ``given.surname`` form: ``c.jones`` and ``cjones`` find Chris Jones (and Claire Jones).

Typos are found without a table: `edits` lists every string one edit away (a character deleted, inserted,
replaced, or two neighbours swapped) and each is looked up in the UPN and mail tables. That costs about a
thousand dictionary lookups per cell that needs it, and nothing for the cells that do not.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Iterator

from sync.models import DirectoryUser

from .text import fold, strip_marks

__all__ = ["Hints", "Ids", "edits", "get_ids", "separator_free", "share"]

# key -> one user id, or the set of ids when several users share the key (kept apart to find ambiguity).
# A bare string for the common single-owner case keeps building 100,000 users cheap.
Ids = dict[str, "str | set[str]"]

_SEPARATORS = str.maketrans("", "", "._-'")
_WORD = re.compile(r"[a-z0-9]+")
_PARTS = re.compile(r"[._-]")
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


def _put(index: Ids, key: str, uid: str) -> None:
    if index.setdefault(key, uid) != uid:
        share(index, key, uid)


def separator_free(local: str) -> str:
    """The local part without ``.``, ``_``, ``-`` and ``'``."""
    return local.translate(_SEPARATORS)


def _name_words(display_name: str) -> list[str]:
    """Given name first, surname last: "Jones, Chris" -> ["chris", "jones"]; accents and punctuation dropped."""
    last, comma, first = display_name.partition(",")
    if comma and "," not in first:
        display_name = f"{first} {last}"
    text = fold(display_name)
    if not text.isascii():
        text = strip_marks(text)
    words: list[str] = []
    for token in text.split():
        words.extend(_WORD.findall(token.replace("'", "")))
    return words


class Hints:
    """The suggestion tables of one directory version."""

    __slots__ = ("sep", "initials")

    def __init__(self) -> None:
        self.sep: Ids = {}
        self.initials: Ids = {}

    @classmethod
    def build(cls, users: Iterable[DirectoryUser]) -> Hints:
        hints = cls()
        sep, initials = hints.sep, hints.initials
        translate = str.translate
        for user in users:
            upn = user.upn.lower()
            local, _, domain = upn.rpartition("@")
            uid = user.id
            if "#" in local:  # a guest: its local part is an address, not a name
                continue
            at = "@" + domain
            _put(sep, translate(local, _SEPARATORS) + at, uid)
            keys = set()
            parts = [p for p in _PARTS.split(local) if p]
            if len(parts) >= 2 and parts[0].isalpha():
                keys.add(parts[0][0] + parts[-1].replace("'", "") + at)
            words = _name_words(user.display_name) if user.display_name else []
            if len(words) >= 2:
                keys.add(words[0][0] + words[-1] + at)
            for key in keys:
                _put(initials, key, uid)
        return hints


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
