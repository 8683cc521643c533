"""The ladders of request shapes (pure: plain values, a real SQLite store for the memory)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sync.errors import NoFallbackError, PermanentGraphError, TransientGraphError
from sync.graph.directory import startswith_partitions
from sync.graph.shapes import LADDERS, ShapeBook, is_refusal
from sync.store import Store

UNSUPPORTED = PermanentGraphError("GET users: HTTP 400 Request_UnsupportedQuery: Operator 'startsWith' is not "
                                  "supported", status=400, code="Request_UnsupportedQuery")


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_every_ladder_ends_in_a_shape_and_names_a_fix() -> None:
    for ladder in LADDERS.values():
        assert len(ladder.shapes) >= 2 and ladder.fix and ladder.what
    assert LADDERS["directory"].shapes == ("startswith", "ranges", "advanced", "paging", "delta")


def test_only_a_400_or_501_is_a_refusal() -> None:
    assert is_refusal(UNSUPPORTED)
    assert is_refusal(PermanentGraphError("x", status=501, code="NotImplemented"))
    assert not is_refusal(PermanentGraphError("x", status=403, code="Authorization_RequestDenied"))
    assert not is_refusal(PermanentGraphError("x", status=404, code="Request_ResourceNotFound"))
    assert not is_refusal(PermanentGraphError("x", status=400, code="syncStateNotFound"))
    assert not is_refusal(TransientGraphError("x", status=429, retry_after=1.0))
    assert not is_refusal(NoFallbackError("x", status=400))


def test_a_refusal_moves_down_one_rung_warns_once_and_the_last_one_says_what_to_do(
        caplog: pytest.LogCaptureFixture) -> None:
    book = ShapeBook("contoso")
    assert book.current("directory") == "startswith"
    with caplog.at_level(logging.WARNING, logger="sync.graph.shapes"):
        assert book.refuse("directory", "startswith", UNSUPPORTED) == "ranges"
        assert book.refuse("directory", "startswith", UNSUPPORTED) == "ranges"  # 36 partitions, one warning
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "UPN partitions by startsWith" in warnings[0] and "UPN ranges (ge/le)" in warnings[0]
    assert "Request_UnsupportedQuery" in warnings[0] and "account contoso" in warnings[0]
    for shape in ("ranges", "advanced", "paging"):
        book.refuse("directory", shape, UNSUPPORTED)
    assert book.current("directory") == "delta"
    with pytest.raises(NoFallbackError) as err:
        book.refuse("directory", "delta", UNSUPPORTED)
    assert "every shape of the directory read" in str(err.value) and "doctor" in err.value.hint
    assert book.current("batch") == "batch"  # other ladders are untouched


def test_refusals_are_remembered_for_a_day_and_per_account(tmp_path: Path) -> None:
    clock = Clock()
    with Store(tmp_path / "s.sqlite") as store:
        ShapeBook("contoso", store, clock=clock).refuse("batch", "batch", UNSUPPORTED)
        assert ShapeBook("contoso", store, clock=clock).current("batch") == "single"  # a restart: no new probe
        assert ShapeBook("fabrikam", store, clock=clock).current("batch") == "batch"  # the other account's own
        clock.now += timedelta(hours=23)
        assert ShapeBook("contoso", store, clock=clock).current("batch") == "single"
        clock.now += timedelta(hours=1)
        assert ShapeBook("contoso", store, clock=clock).current("batch") == "batch"  # the next day: probe again
        assert store.load_refusals("contoso") == []


def test_startswith_partitions_cover_every_documented_first_character() -> None:
    clauses = startswith_partitions()
    firsts = set()
    for c in clauses:
        literal = c.split(",", 1)[1].rstrip(")")
        firsts.add(literal[1:-1].replace("''", "'").replace("%23", "#"))
    assert set("0123456789abcdefghijklmnopqrstuvwxyz'.-_!#^~$") == firsts
    assert all("#" not in c for c in clauses)  # a raw # would end the URL's query
