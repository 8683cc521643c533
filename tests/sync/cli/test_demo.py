"""The demo: readable tables on an 80-column terminal, cells as typed, and a clear error without fixtures."""

from __future__ import annotations

import codecs
import io
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from sync.demo import run_demo, shown_cell
from sync.errors import SyncError


@pytest.mark.parametrize(("cell", "shown"), [
    (None, "(empty)"),
    ("", "(empty)"),
    ("hannah.novak@contoso.co.uk", "hannah.novak@contoso.co.uk"),
    ("  lee.gu@contoso.com", "··lee.gu@contoso.com"),
    ("megan.bowen@contoso.com ", "megan.bowen@contoso.com·"),
    ("   ", "···"),
    ("Adele Vance", "Adele Vance"),  # a space inside stays a space
    ("adele.vance\u00a0@contoso.com", "adele.vance⎵@contoso.com"),
    ("\t\u00a0", "→⎵"),
    ("kim.akers@fabrikam.com\t", "kim.akers@fabrikam.com→"),
    ("\u200bzoe.muller@contoso.com", "⟨U+200B⟩zoe.muller@contoso.com"),
    ("\ufeffjose.garcia@contoso.com", "⟨U+FEFF⟩jose.garcia@contoso.com"),
    ("ali.khan@contoso.com;\nchris.jones@contoso.com", "ali.khan@contoso.com;↵chris.jones@contoso.com"),
    ("mаria.garcia@contoso.com", "mаria.garcia@contoso.com"),  # a Cyrillic а is shown as typed
    ("'quoted'@x", "'quoted'@x"),
])
def test_a_cell_is_shown_as_typed_with_its_whitespace_visible(cell: str | None, shown: str) -> None:
    assert shown_cell(cell) == shown


def test_the_demo_fits_80_columns_and_writes_excel_ready_csvs(tmp_path: Path) -> None:
    screen = io.StringIO()
    console = Console(file=screen, width=80, color_system=None, force_terminal=False)
    assert run_demo(tmp_path / "demo", cycles=1, interval=0.5, console=console, csv_encoding="utf-8-sig") == 0
    text = screen.getvalue()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    agents = lines[next(i for i, line in enumerate(lines) if line.startswith("Agent list of contoso")):]
    table = agents[:next(i for i, line in enumerate(agents) if "UPN findings" in line)]
    assert table[1].split() == ["UPN", "(as", "typed)", "UpnStatus", "Availability", "Activity"]
    body = "\n".join(table[3:])
    assert "None" not in body and "'" not in body  # no Python repr of a cell
    assert "(empty)" in body and "··lee.gu@contoso.com" in body
    # Every UPN cell is whole, on one line, and so is its verdict: nothing was cut to fit.
    for upn, status in (("hannah.novak@contoso.co.uk", "ok"), ("sip:isaiah.langer@contoso.com", "fixed: PREFIX")):
        row = next(line for line in table if line.startswith(upn))
        assert f"  {status}  " in row, row
    assert "…" not in text
    presence = lines[next(i for i, line in enumerate(lines) if line.startswith("presence.csv (")) + 1]
    assert presence.split() == ["account", "upn", "availability", "activity", "observed"]
    out = tmp_path / "demo" / "out"
    for name in ("presence.csv", "presence_history.csv", "validation.csv"):
        data = (out / name).read_bytes()
        assert data.startswith(codecs.BOM_UTF8 + b"account_id,"), name
        assert b"\n" + codecs.BOM_UTF8 not in data, name  # (a UPN cell typed with a BOM keeps its own)


def test_missing_fixtures_are_named_as_the_cause(tmp_path: Path) -> None:
    empty = tmp_path / "tenants"
    empty.mkdir()
    (empty / "contoso.answers.json").write_text("{}", encoding="utf-8")  # an answer key is no tenant
    with pytest.raises(SyncError) as caught:
        run_demo(tmp_path / "demo", cycles=1, fixtures_dir=empty, console=Console(file=io.StringIO()))
    message = str(caught.value)
    assert f"no tenant fixtures in {empty}" in message and "--out" not in message and "--state-dir" not in message


@pytest.mark.parametrize("command", [["demo"], ["export", "--state-dir", "nowhere"]])
def test_an_unknown_csv_encoding_is_a_usage_error(tmp_path: Path, command: list[str]) -> None:
    r = subprocess.run([sys.executable, "-m", "sync.cli", *command, "--csv-encoding", "latin-1"], cwd=tmp_path,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2, r.stderr
    assert "--csv-encoding 'latin-1' is not a CSV encoding" in r.stderr and "utf-8-sig" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "demo").exists()
