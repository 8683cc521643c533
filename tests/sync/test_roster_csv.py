"""A roster CSV with bad content is a RosterError naming the file and line (the loop keeps the last good roster),
never a crash."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sync.errors import RosterError
from sync.runtime import CsvRoster


def read(path: Path) -> list:  # type: ignore[type-arg]
    return asyncio.run(CsvRoster(path, "UPN", "contoso").read())


def test_invalid_utf8_after_the_first_kilobytes_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "roster.csv"
    f.write_bytes(b"Id,UPN\n" + b"".join(b"%d,agent%d@contoso.com\n" % (i, i) for i in range(1, 600)) + b"9999,\xff\xfe@x\n")
    with pytest.raises(RosterError, match="not UTF-8 text after line"):
        read(f)


def test_a_cell_past_the_csv_field_limit_is_a_clear_error(tmp_path: Path) -> None:
    f = tmp_path / "roster.csv"
    f.write_text("Id,UPN\n1,a@contoso.com\n2," + "x" * 200_000 + "\n", encoding="utf-8")
    with pytest.raises(RosterError, match=r"roster.csv:3: not a readable CSV row"):
        read(f)


def test_non_ascii_digits_in_an_id_fall_back_to_the_row_number(tmp_path: Path) -> None:
    f = tmp_path / "roster.csv"
    f.write_text("Id,UPN\n\u00b2,a@contoso.com\n7,b@contoso.com\n", encoding="utf-8")
    rows = read(f)
    assert [(r.item_id, r.raw_upn) for r in rows] == [(1, "a@contoso.com"), (7, "b@contoso.com")]
