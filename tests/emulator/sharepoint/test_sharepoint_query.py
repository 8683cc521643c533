"""The ``$filter`` subset SharePoint documents, as pure functions over plain list items."""

from __future__ import annotations

import pytest

from sync.emulator.model.tenant import SpList
from sync.emulator.sharepoint.query import FilterError, compile_filter, parse_skiptoken, sort_items


def make_list() -> SpList:
    lst = SpList(id="00000000-0000-4000-8000-000000000001", title="Agents", columns=["Title", "UPN", "Score"])
    for title, upn, score in [("Ann", "ann@x.com", 5), ("Bob", None, 12), ("O'Hara", "oh@x.com", 7.5)]:
        lst.add({"Title": title, "UPN": upn, "Score": score})
    return lst


def resolve(name: str) -> str:
    if name.lower() == "id":
        return "Id"
    if name in ("Title", "UPN", "Score"):
        return name
    raise FilterError(f"Column '{name}' does not exist.", "unknown_field", name)


def matching(expr: str) -> list[int]:
    lst = make_list()
    flt = compile_filter(expr, resolve)
    return [it.id for it in lst.items.values() if flt.predicate(it)]


@pytest.mark.parametrize(("expr", "expected"), [
    ("Title eq 'ANN'", [1]),
    ("Title eq 'O''Hara'", [3]),
    ("Score gt 6 and Score lt 12", [3]),
    ("Score ge 12 or Id eq 1", [1, 2]),
    ("(Id eq 1 or Id eq 2) and Title ne 'bob'", [1]),
    ("UPN eq null", [2]),
    ("UPN ne null", [1, 3]),
    ("startswith(Title,'o''h')", [3]),
    ("substringof('@x.com',UPN)", [1, 3]),
    ("Score eq '12'", [2]),
])
def test_filter_semantics(expr: str, expected: list[int]) -> None:
    assert matching(expr) == expected


@pytest.mark.parametrize("expr", [
    "endswith(Title,'n')", "tolower(Title) eq 'ann'", "not Id eq 1", "Id add 1 eq 2", "Title eq 'unterminated",
    "Title eq", "Title eq 'a' and", "(Title eq 'a'", "Title like 'a'",
])
def test_unsupported_or_broken_filters_are_refused(expr: str) -> None:
    with pytest.raises(FilterError) as exc_info:
        compile_filter(expr, resolve)
    assert exc_info.value.kind == "syntax"


def test_unknown_column_names_the_column_and_columns_are_reported() -> None:
    with pytest.raises(FilterError) as exc_info:
        compile_filter("Nope eq 1", resolve)
    assert (exc_info.value.kind, exc_info.value.name) == ("unknown_field", "Nope")
    assert compile_filter("UPN eq 'a' or Id eq 2", resolve).columns == {"UPN", "Id"}


def test_skiptoken_and_sorting() -> None:
    assert parse_skiptoken("Paged=TRUE&p_ID=42") == {"Paged": "TRUE", "p_ID": "42"}
    assert parse_skiptoken(None) == {}
    lst = make_list()
    assert [it.id for it in sort_items(lst, [("Score", True)])] == [2, 3, 1]
    assert [it.id for it in sort_items(lst, [("UPN", False)])] == [2, 1, 3]  # nulls first
