"""The store keeps a verdict's candidates and detail, and a store written before they existed keeps its rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sync.models import ValidationRow
from sync.store import SCHEMA_VERSION, Store
from sync.store._db import MIGRATIONS, migrate

TIE = ValidationRow(3, "c.jones@contoso.com", "", "invalid", ("NOT_FOUND",), "error", "", None,
                    "ambiguous: chris.jones@contoso.com, claire.jones@contoso.com")
LOOK = ValidationRow(4, "m\u0430ria@contoso.com", "", "invalid", ("CONFUSABLE",), "error", "maria@contoso.com",
                     None, "", "U+0430 CYRILLIC SMALL LETTER A at position 2")


def test_candidates_and_detail_survive_a_reopen(tmp_path: Path) -> None:
    db = tmp_path / "s.sqlite"
    store = Store(db)
    assert store.save_validation("contoso", [TIE, LOOK]) == 2
    store.close()
    again = Store(db)
    try:
        assert again.load_validation("contoso") == [TIE, LOOK]
        assert again.save_validation("contoso", [TIE, LOOK]) == 0
    finally:
        again.close()


def test_a_store_from_before_the_candidates_is_migrated_keeping_its_verdicts(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite"
    c = sqlite3.connect(db, isolation_level=None)
    assert migrate(c, MIGRATIONS[:2]) == 2
    c.execute("INSERT INTO validation (account_id, item_id, raw_upn, normalized_upn, status, codes, severity,"
              " suggestion, user_id, updated_at) VALUES ('contoso', 7, ' a@contoso.com', 'a@contoso.com', 'fixed',"
              " 'WHITESPACE', 'warning', '', 'id-a', '2026-11-30T00:00:00.000000Z')")
    c.close()
    store = Store(db)
    try:
        assert store.load_validation("contoso") == [
            ValidationRow(7, " a@contoso.com", "a@contoso.com", "fixed", ("WHITESPACE",), "warning", "", "id-a")]
        assert store.save_validation("contoso", [TIE]) == 2  # item 3 written, item 7 gone
        assert store.load_validation("contoso") == [TIE]
    finally:
        store.close()
    with sqlite3.connect(db) as check:
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
