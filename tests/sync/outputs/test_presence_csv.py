"""presence.csv written incrementally (PresenceCsv) is byte for byte what a fresh write gives, cycle after cycle."""

from __future__ import annotations

import dataclasses
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sync.models import Presence
from sync.outputs.csv import PresenceCsv, write_presence_csv

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)


def agents(account: str, n: int) -> list[Presence]:
    return [Presence(account, i, f"u{i}@{account}.com", f"id-{account}-{i}", f"User, {i}" if i % 7 == 0 else f"U {i}",
                     "Available", "Available", 'says "hi", ok' if i % 11 == 0 else "", False, T0,
                     sequence_number=f"C{i:06d}") for i in range(1, n + 1)]


def test_incremental_writes_equal_fresh_writes(tmp_path: Path) -> None:
    rng = random.Random(5)
    rows = {"contoso": agents("contoso", 300), "fabrikam": agents("fabrikam", 40)}
    writer = PresenceCsv(tmp_path / "presence.csv")
    for cycle in range(12):
        now = T0 + timedelta(seconds=cycle)
        for acc, lst in rows.items():
            for i in rng.sample(range(len(lst)), 5):  # a few agents change
                lst[i] = dataclasses.replace(lst[i], availability=rng.choice(["Busy", "Away", "Available"]),
                                             activity="InACall", observed_at=now, sequence_number=f"S{cycle}-{i}")
            if cycle == 4:  # a chunk failed: stale rows keep their own time
                lst[3] = dataclasses.replace(lst[3], stale=True)
            if cycle == 5:
                lst[3] = dataclasses.replace(lst[3], stale=False)
            if cycle == 7 and acc == "fabrikam":  # the roster grew
                lst.extend(agents("fabrikam", 45)[40:])
            if cycle == 9 and acc == "contoso":  # and shrank
                del lst[100:120]
        stamps = {"contoso": now, "fabrikam": now + timedelta(milliseconds=250)}
        all_rows = [p for acc in sorted(rows) for p in rows[acc]]
        writer.write(all_rows, stamps)
        expected = write_presence_csv(tmp_path / "fresh.csv", all_rows, stamps)
        assert (tmp_path / "presence.csv").read_bytes() == expected.read_bytes(), f"cycle {cycle}"
    data = (tmp_path / "presence.csv").read_bytes()
    assert data.count(b"\r\n") == 1 + len(rows["contoso"]) + len(rows["fabrikam"])


def test_an_account_that_disappears_is_dropped(tmp_path: Path) -> None:
    writer = PresenceCsv(tmp_path / "p.csv")
    writer.write(agents("a", 3) + agents("b", 2), {"a": T0, "b": T0})
    writer.write(agents("b", 2), {"b": T0})
    data = (tmp_path / "p.csv").read_bytes()
    assert b"@a.com" not in data and data.count(b"@b.com") == 2
    assert data.count(b"\r\n") == 3
