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

from collections.abc import Collection, Iterable, Iterator

from sync.models import DirectoryUser

from .text import fold, strip_marks

__all__ = ["Hints", "Ids", "edits", "get_ids", "separator_free", "share"]

# key -> one user id, or the set of ids when several users share the key (kept apart to find ambiguity).
# A bare string for the common single-owner case keeps building 100,000 users cheap.
Ids = dict[str, "str | set[str]"]

_SEPARATORS = str.maketrans("", "", "._-'")
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
    text = display_name.lower() if display_name.isascii() else strip_marks(fold(display_name))
    return [w for w in text.translate(_PUNCT).split() if w]


class Hints:
    """The suggestion tables of one directory version."""

    __slots__ = ("sep", "initials")

    def __init__(self) -> None:
        self.sep: Ids = {}
        self.initials: Ids = {}

    @classmethod
    def build(cls, users: Iterable[tuple[str, DirectoryUser]]) -> Hints:
        """From (lower-case UPN, user) pairs whose UPNs passed the syntax rule."""
        hints = cls()
        sep, initials = hints.sep, hints.initials
        put_sep, put_initials = sep.setdefault, initials.setdefault
        for upn, user in users:
            local, _, domain = upn.partition("@")
            if "#" in local:  # a guest: its local part is an address, not a name
                continue
            uid = user.id
            at = "@" + domain
            key = local.translate(_SEPARATORS) + at
            if put_sep(key, uid) != uid:
                share(sep, key, uid)
            parts = local.replace("_", ".").replace("-", ".").split(".")
            first, last = parts[0], parts[-1].replace("'", "")
            own = first[:1] + last + at if len(parts) > 1 and first[:1].isalpha() and last else ""
            if own and put_initials(own, uid) != uid:
                share(initials, own, uid)
            if user.display_name:
                words = _name_words(user.display_name)
                if len(words) > 1:
                    key = words[0][0] + words[-1] + at
                    if key != own and put_initials(key, uid) != uid:
                        share(initials, key, uid)
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
