"""presence_history.csv catches up with the store after a run was killed between the two writes."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sync.models import Presence
from sync.outputs.csv import append_history_csv
from sync.outputs.history import catch_up_history
from sync.store import Store

T0 = datetime(2026, 11, 30, 6, 0, 0, tzinfo=UTC)


def pres(i: int, availability: str, at: datetime) -> Presence:
    return Presence("contoso", i, f"agent{i}@contoso.com", f"id-{i}", f"Agent {i}", availability, availability, "",
                    False, at, sequence_number=f"{availability}-{at.timestamp()}")


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_the_rows_a_kill_left_out_are_appended_once(tmp_path: Path) -> None:
    out = tmp_path / "presence_history.csv"
    with Store(tmp_path / "s.sqlite") as store:
        ticks = [[pres(i, ("Available", "Busy", "Away")[(n + i) % 3], T0 + timedelta(seconds=n)) for i in range(5)]
                 for n in range(4)]
        for n, tick in enumerate(ticks):
            changes = store.apply_presences("contoso", tick)
            if n < 3:  # the last tick reached the store, then the process was killed before the CSV append
                append_history_csv(out, changes)
        everything = list(store.history())
        assert len(rows(out)) < len(everything)
        added = catch_up_history(out, store)
        assert added == len(everything) - (len(rows(out)) - added)
        assert [r["to_availability"] for r in rows(out)] == [c.to_availability for c in everything]
        assert catch_up_history(out, store) == 0  # nothing is written twice


def test_a_missing_file_is_left_alone(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        store.apply_presences("contoso", [pres(1, "Busy", T0)])
        assert catch_up_history(tmp_path / "presence_history.csv", store) == 0
    assert not (tmp_path / "presence_history.csv").exists()
