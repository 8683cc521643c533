"""The hand-written $filter parser of the local tenant's /users (pure function, plain values)."""

from __future__ import annotations

import pytest

from sync.emulator.graph.filter import FilterError, parse_filter


def test_eq_and_in_become_pairs() -> None:
    assert parse_filter("userPrincipalName eq 'a@x.com'") == [("userPrincipalName", "a@x.com")]
    assert parse_filter("ID IN ('1', '2')  or mail EQ 'm@x.com'") == [("id", "1"), ("id", "2"), ("mail", "m@x.com")]
    assert parse_filter("(id eq '1') or (userprincipalname in ('u@x'))") == [("id", "1"), ("userPrincipalName", "u@x")]


def test_doubled_quotes_are_one_quote() -> None:
    assert parse_filter("userPrincipalName eq 'o''neil@x.com'") == [("userPrincipalName", "o'neil@x.com")]
    assert parse_filter("mail eq ''''") == [("mail", "'")]


def test_special_characters_stay_literal() -> None:
    value = "a_b.com#EXT#@t.onmicrosoft.com) or (id eq 'x"
    assert parse_filter("userPrincipalName eq '" + value.replace("'", "''") + "'") == [("userPrincipalName", value)]


def test_value_limit() -> None:
    fifteen = ",".join(f"'{i}'" for i in range(15))
    assert len(parse_filter(f"id in ({fifteen})")) == 15
    with pytest.raises(FilterError) as exc:
        parse_filter(f"id in ({fifteen}) or id eq 'x'")
    assert exc.value.code == "Request_UnsupportedQuery"
    assert len(parse_filter(f"id in ({fifteen}) or id eq 'x'", max_values=20)) == 16


@pytest.mark.parametrize("text,code", [
    ("displayName eq 'x'", "Request_UnsupportedQuery"),
    ("id ne 'x'", "Request_UnsupportedQuery"),
    ("startswith(userPrincipalName,'a')", "Request_UnsupportedQuery"),
    ("id eq 'x' and mail eq 'y'", "Request_UnsupportedQuery"),
    ("id eq 'unterminated", "BadRequest"),
    ("id eq x", "BadRequest"),
    ("id in ('a' 'b')", "BadRequest"),
    ("(id eq 'a'", "BadRequest"),
    ("", "BadRequest"),
    ("id eq 'a' or", "BadRequest"),
])
def test_refusals(text: str, code: str) -> None:
    with pytest.raises(FilterError) as exc:
        parse_filter(text)
    assert exc.value.code == code
