"""Issue 10's table, cell by cell, against the contoso fixture directory: what a careful human would answer.

Each cell is judged alone (no DUPLICATE from other rows); the fixture's answer key holds the same kinds of
cells inside a whole roster (tests/sync/test_roster.py::test_answer_key).
"""

from __future__ import annotations

import pytest

from sync.models import AgentRow, ValidationRow
from sync.validation import validate

from .test_roster import load_tenant

_, DOMAINS, DIRECTORY = load_tenant("contoso")
ALI, JOHN, MARIA = "ali.khan@contoso.com", "john.smith@contoso.com", "maria.garcia@contoso.com"
CJ = "ambiguous: chris.jones@contoso.com, claire.jones@contoso.com"


def one(raw: str) -> ValidationRow:
    [row] = validate([AgentRow(1, raw)], DOMAINS, DIRECTORY)
    return row


@pytest.mark.parametrize(
    ("raw", "status", "codes", "upn", "suggestion", "candidates"),
    [
        ("Ali Khan <ali.khan@contoso.com>", "fixed", ("ANGLE_ADDRESS",), ALI, "", ""),
        ('"ali.khan@contoso.com"', "fixed", ("QUOTED",), ALI, "", ""),
        ("ali.khan@contoso.com.", "fixed", ("TRAILING_DOT",), ALI, "", ""),
        ("ali.khan%40contoso.com", "fixed", ("URL_ENCODED",), ALI, "", ""),
        ("jhon.smith@contoso.com", "invalid", ("NOT_FOUND",), "", JOHN, ""),
        ("ali_khan@contoso.com", "invalid", ("NOT_FOUND",), "", ALI, ""),
        ("alikhan@contoso.com", "invalid", ("NOT_FOUND",), "", ALI, ""),
        ("m\u0430ria.garcia@contoso.com", "invalid", ("CONFUSABLE",), "", MARIA, ""),
        ("ali.khan@contoso.com; chris.jones@contoso.com", "invalid", ("MULTIPLE",), "", "",
         "ali.khan@contoso.com -> ali.khan@contoso.com; chris.jones@contoso.com -> chris.jones@contoso.com"),
        ("c.jones@contoso.com", "invalid", ("NOT_FOUND",), "", "", CJ),
    ],
)
def test_the_issue_table(raw: str, status: str, codes: tuple[str, ...], upn: str, suggestion: str,
                         candidates: str) -> None:
    row = one(raw)
    assert (row.status, row.codes, row.normalized_upn, row.suggestion, row.candidates) == (
        status, codes, upn, suggestion, candidates)
    assert row.collectable == bool(row.user_id)


def test_the_look_alike_is_named_with_its_position() -> None:
    assert one("m\u0430ria.garcia@contoso.com").detail == "U+0430 CYRILLIC SMALL LETTER A at position 2"


def test_a_multiple_cell_collects_nobody_and_says_how_many() -> None:
    row = one("ali.khan@contoso.com; chris.jones@contoso.com")
    assert (row.severity, row.user_id, row.detail) == ("error", None, "2 addresses in one cell")
