"""The small slice of OData ``$filter`` Graph's directory accepts on users, parsed by hand.

Grammar (keywords case-insensitive)::

    expr  := atom ("or" atom)*
    atom  := "(" expr ")" | PROP "eq" STRING | PROP "in" "(" STRING ("," STRING)* ")"
    PROP  := userPrincipalName | mail | id          STRING := '...' with '' for a quote

The result is a flat disjunction of ``(property, value)`` pairs. Nothing is evaluated
or turned into a regex: the text only ever becomes tokens and plain strings.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FilterError", "UpnRange", "parse_filter", "parse_upn_range"]

_PROPS = {"userprincipalname": "userPrincipalName", "mail": "mail", "id": "id"}


@dataclass
class FilterError(Exception):
    """Why a filter was refused: ``code`` and ``message`` go into Graph's 400 body."""

    code: str
    message: str

    def __str__(self) -> str:
        return self.message


def _unsupported(prop: str) -> FilterError:
    return FilterError("Request_UnsupportedQuery",
                       f"Unsupported or invalid query filter clause specified for property '{prop}' of resource 'User'.")


def _invalid(detail: str) -> FilterError:
    return FilterError("BadRequest", f"Invalid filter clause: {detail}")


def tokenize(text: str) -> list[tuple[str, str]]:
    """Tokens as (kind, text): kind is one of ``( ) , str word``."""
    out: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "(),":
            out.append((c, c))
            i += 1
        elif c == "'":
            buf: list[str] = []
            j = i + 1
            while True:
                if j >= n:
                    raise _invalid("unterminated string literal.")
                if text[j] == "'":
                    if j + 1 < n and text[j + 1] == "'":
                        buf.append("'")
                        j += 2
                        continue
                    break
                buf.append(text[j])
                j += 1
            out.append(("str", "".join(buf)))
            i = j + 1
        else:
            j = i
            while j < n and not text[j].isspace() and text[j] not in "(),'":
                j += 1
            out.append(("word", text[i:j]))
            i = j
    return out


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.toks = tokens
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self, kind: str, what: str) -> str:
        tok = self.peek()
        if tok is None or tok[0] != kind:
            found = "end of expression" if tok is None else repr(tok[1])
            raise _invalid(f"expected {what} but found {found}.")
        self.pos += 1
        return tok[1]

    def expr(self) -> list[tuple[str, str]]:
        terms = self.atom()
        while (tok := self.peek()) is not None and tok[0] == "word" and tok[1].lower() == "or":
            self.pos += 1
            terms += self.atom()
        return terms

    def atom(self) -> list[tuple[str, str]]:
        tok = self.peek()
        if tok is not None and tok[0] == "(":
            self.pos += 1
            inner = self.expr()
            self.take(")", "')'")
            return inner
        name = self.take("word", "a property name")
        prop = _PROPS.get(name.lower())
        if prop is None:
            raise _unsupported(name)
        op = self.take("word", "an operator").lower()
        if op == "eq":
            return [(prop, self.take("str", "a string literal"))]
        if op == "in":
            self.take("(", "'('")
            values = [self.take("str", "a string literal")]
            while (nxt := self.peek()) is not None and nxt[0] == ",":
                self.pos += 1
                values.append(self.take("str", "a string literal"))
            self.take(")", "')'")
            return [(prop, v) for v in values]
        raise _unsupported(prop)


def parse_filter(text: str, max_values: int = 15) -> list[tuple[str, str]]:
    """``(property, value)`` pairs any of which a user must match; FilterError if Graph would refuse it."""
    tokens = tokenize(text)
    if not tokens:
        raise _invalid("the expression is empty.")
    parser = _Parser(tokens)
    terms = parser.expr()
    rest = parser.peek()
    if rest is not None:
        if rest[0] == "word" and rest[1].lower() == "and":
            raise FilterError("Request_UnsupportedQuery", "Unsupported query: 'and' is not supported here.")
        raise _invalid(f"unexpected {rest[1]!r}.")
    if len(terms) > max_values:
        raise FilterError(
            "Request_UnsupportedQuery",
            f"Too many child clauses specified in search filter expression containing 'OR' operators: "
            f"{len(terms)}. Max allowed: {max_values}.")
    return terms


# --- ranges on userPrincipalName ---------------------------------------------------------------------------
# The user resource documents userPrincipalName as filterable with ge, le and startsWith (also eq); a job
# that reads a big directory in parallel partitions sends "userPrincipalName ge 'a' and userPrincipalName
# le 'b'". Comparisons are case-insensitive, as UPNs are. Grammar of this form (no "or")::
#
#     conj := atom ("and" atom)*
#     atom := "(" conj ")" | startswith "(" userPrincipalName "," STRING ")"
#           | userPrincipalName ("ge" | "le" | "eq") STRING

_RANGE_WORDS = {"ge", "le", "startswith"}


@dataclass(frozen=True)
class UpnRange:
    """Lower-cased bounds a UPN must lie within: ``lo <= upn <= hi`` and ``upn.startswith(prefix)``."""

    lo: str | None = None
    hi: str | None = None
    prefix: str = ""
    empty: bool = False  # two startswith that cannot both hold


class _RangeParser(_Parser):
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        super().__init__(tokens)
        self.lo: str | None = None
        self.hi: str | None = None
        self.prefixes: list[str] = []

    def conj(self) -> None:
        self.range_atom()
        while (tok := self.peek()) is not None and tok[0] == "word" and tok[1].lower() == "and":
            self.pos += 1
            self.range_atom()

    def range_atom(self) -> None:
        tok = self.peek()
        if tok is not None and tok[0] == "(":
            self.pos += 1
            self.conj()
            self.take(")", "')'")
            return
        name = self.take("word", "a property name or startswith")
        if name.lower() == "startswith":
            self.take("(", "'('")
            self._upn(self.take("word", "a property name"))
            self.take(",", "','")
            self.prefixes.append(self.take("str", "a string literal").lower())
            self.take(")", "')'")
            return
        self._upn(name)
        op = self.take("word", "an operator").lower()
        if op not in ("ge", "le", "eq"):
            raise _unsupported("userPrincipalName")
        value = self.take("str", "a string literal").lower()
        if op in ("ge", "eq"):
            self.lo = value if self.lo is None else max(self.lo, value)
        if op in ("le", "eq"):
            self.hi = value if self.hi is None else min(self.hi, value)

    @staticmethod
    def _upn(name: str) -> None:
        if name.lower() != "userprincipalname":
            raise _unsupported(name)


def parse_upn_range(text: str) -> UpnRange | None:
    """The bounds of a ge/le/startswith filter on userPrincipalName; None when the filter is not one
    (the eq/in/or form of ``parse_filter`` applies); FilterError when Graph would refuse it."""
    tokens = tokenize(text)
    if not any(kind == "word" and value.lower() in _RANGE_WORDS for kind, value in tokens):
        return None
    parser = _RangeParser(tokens)
    parser.conj()
    rest = parser.peek()
    if rest is not None:
        if rest[0] == "word" and rest[1].lower() == "or":
            raise FilterError("Request_UnsupportedQuery",
                              "Unsupported query: 'or' cannot be combined with ge, le or startswith here.")
        raise _invalid(f"unexpected {rest[1]!r}.")
    prefix = max(parser.prefixes, key=len, default="")
    empty = any(not prefix.startswith(p) for p in parser.prefixes)
    return UpnRange(parser.lo, parser.hi, prefix, empty)
