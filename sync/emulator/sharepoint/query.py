"""List queries shared by SharePoint REST and Graph's list route: ``$filter``, ordering, paging.

The ``$filter`` grammar is the subset SharePoint documents (SPD "Use OData query operations"):
``eq ne lt le gt ge``, ``and``, ``or``, parentheses, ``startswith(Col,'x')`` and
``substringof('x',Col)``; string literals quote ``'`` by doubling it. Anything else
(``endswith``, ``tolower``, ``not``, arithmetic) is refused, as SharePoint refuses it.
Text comparisons ignore case, as SharePoint's CAML does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..model.tenant import ListItem, SpList

__all__ = [
    "LIST_VIEW_THRESHOLD",
    "CompiledFilter",
    "FilterError",
    "compile_filter",
    "field_value",
    "parse_skiptoken",
    "sort_items",
]

# SharePoint Online's list view threshold: queries on non-indexed columns of larger lists fail.
LIST_VIEW_THRESHOLD = 5000

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<dt>datetime'[^']*')|(?P<num>-?\d+(?:\.\d+)?)(?![\w.])"
    r"|(?P<punct>[(),])|(?P<word>[A-Za-z_][\w/.]*))"
)
_COMPARE = {"eq", "ne", "lt", "le", "gt", "ge"}
_FUNCS = {"startswith", "substringof"}
_RESERVED = _COMPARE | {"and", "or", "not", "add", "sub", "mul", "div", "mod"}


class FilterError(ValueError):
    """A ``$filter`` the service refuses. ``kind`` is "syntax" or "unknown_field" (then ``name`` is set)."""

    def __init__(self, message: str, kind: str = "syntax", name: str = "") -> None:
        super().__init__(message)
        self.kind = kind
        self.name = name


Predicate = Callable[[ListItem], bool]


@dataclass
class CompiledFilter:
    predicate: Predicate
    columns: set[str] = field(default_factory=set)  # resolved column names the filter reads


def field_value(item: ListItem, column: str) -> Any:
    """An item's value for a resolved column name (``Id`` and the system dates included)."""
    if column == "Id":
        return item.id
    if column == "Created":
        return item.created
    if column == "Modified":
        return item.modified
    return item.fields.get(column)


def _norm(v: Any) -> Any:
    return v.casefold() if isinstance(v, str) else v


def _compare(a: Any, b: Any, op: str) -> bool:
    if a is None or b is None:
        if op == "eq":
            return a is None and b is None
        if op == "ne":
            return not (a is None and b is None)
        return False
    if isinstance(a, bool) or isinstance(b, bool):
        a, b = str(a).lower(), str(b).lower()
    elif isinstance(a, int | float) and isinstance(b, str) or isinstance(a, str) and isinstance(b, int | float):
        try:
            a, b = float(a), float(b)
        except ValueError:
            a, b = str(a), str(b)
    a, b = _norm(a), _norm(b)
    try:
        return {"eq": a == b, "ne": a != b, "lt": a < b, "le": a <= b, "gt": a > b, "ge": a >= b}[op]
    except TypeError:
        return False


class _Parser:
    def __init__(self, text: str, resolve: Callable[[str], str]) -> None:
        self.text = text
        self.resolve = resolve
        self.toks: list[tuple[str, str]] = []
        self.columns: set[str] = set()
        pos = 0
        stripped = text.rstrip()
        while pos < len(stripped):
            m = _TOKEN.match(stripped, pos)
            if not m or m.end() == pos:
                raise self.error()
            kind = m.lastgroup or ""
            self.toks.append((kind, m.group(kind)))
            pos = m.end()
        self.i = 0

    def error(self) -> FilterError:
        return FilterError(f'The expression "{self.text}" is not valid.')

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise self.error()
        self.i += 1
        return tok

    def expect(self, value: str) -> None:
        if self.take()[1] != value:
            raise self.error()

    def is_word(self, word: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] == "word" and tok[1].lower() == word

    def parse(self) -> Predicate:
        pred = self.or_expr()
        if self.peek() is not None:
            raise self.error()
        return pred

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.is_word("or"):
            self.take()
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda it: any(p(it) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.primary()]
        while self.is_word("and"):
            self.take()
            parts.append(self.primary())
        return parts[0] if len(parts) == 1 else (lambda it: all(p(it) for p in parts))

    def primary(self) -> Predicate:
        tok = self.peek()
        if tok == ("punct", "("):
            self.take()
            inner = self.or_expr()
            self.expect(")")
            return inner
        nxt = self.toks[self.i + 1] if self.i + 1 < len(self.toks) else None
        if tok and tok[0] == "word" and nxt == ("punct", "("):
            return self.function()
        left = self.operand()
        op_tok = self.take()
        if op_tok[0] != "word" or op_tok[1].lower() not in _COMPARE:
            raise self.error()
        right = self.operand()
        op = op_tok[1].lower()
        return lambda it: _compare(left(it), right(it), op)

    def function(self) -> Predicate:
        name = self.take()[1].lower()
        if name not in _FUNCS:
            raise self.error()
        self.expect("(")
        a = self.operand()
        self.expect(",")
        b = self.operand()
        self.expect(")")
        if name == "startswith":
            return lambda it: _text(a(it)).startswith(_text(b(it)))
        return lambda it: _text(a(it)) in _text(b(it))  # substringof(needle, haystack)

    def operand(self) -> Callable[[ListItem], Any]:
        kind, text = self.take()
        value: Any
        if kind == "str":
            value = text[1:-1].replace("''", "'")
        elif kind == "dt":
            value = text[len("datetime'"):-1]
        elif kind == "num":
            value = float(text) if "." in text else int(text)
        elif kind == "word" and text.lower() in ("true", "false"):
            value = text.lower() == "true"
        elif kind == "word" and text.lower() == "null":
            value = None
        elif kind == "word" and text.lower() in _RESERVED:
            raise self.error()
        elif kind == "word":
            column = self.resolve(text)
            self.columns.add(column)
            return lambda it: field_value(it, column)
        else:
            raise self.error()
        return lambda _it: value


def _text(v: Any) -> str:
    return "" if v is None else str(v).casefold()


def compile_filter(text: str, resolve: Callable[[str], str]) -> CompiledFilter:
    """Compile ``$filter``; ``resolve`` maps an identifier to a column name or raises FilterError."""
    parser = _Parser(text, resolve)
    pred = parser.parse()
    return CompiledFilter(pred, parser.columns)


def parse_skiptoken(token: str | None) -> dict[str, str]:
    """``Paged=TRUE&p_ID=5`` -> ``{"Paged": "TRUE", "p_ID": "5"}`` (SharePoint's ordinal paging token)."""
    out: dict[str, str] = {}
    for part in (token or "").split("&"):
        k, sep, v = part.partition("=")
        if sep:
            out[k.strip()] = v.strip()
    return out


def sort_items(lst: SpList, order: list[tuple[str, bool]]) -> list[ListItem]:
    """Items ordered by ``[(column, descending)]``, then by Id (the default order)."""
    items = sorted(lst.items.values(), key=lambda it: it.id)
    for column, desc in reversed(order):
        if column == "Id":
            items.sort(key=lambda it: it.id, reverse=desc)
        else:
            items.sort(key=lambda it, c=column: _sort_key(field_value(it, c)), reverse=desc)  # type: ignore[misc]
    return items


def _sort_key(v: Any) -> tuple[int, Any]:
    if v is None:
        return (0, 0)
    if isinstance(v, bool):
        return (1, int(v))
    if isinstance(v, int | float):
        return (1, v)
    return (2, str(v).casefold())
