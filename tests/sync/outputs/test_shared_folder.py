"""Several replicas writing one OutDir: each account's own files, and whole-folder files that hold every account
once, whichever replica wrote it; a new holder catches the account's history up with the store, once."""

from __future__ import annotations

import csv
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sync.models import Presence, ValidationRow
from sync.outputs.folder import Outputs
from sync.outputs.shared import account_dir
from sync.store import Store

T0 = datetime(2026, 11, 30, 6, 0, 0, tzinfo=UTC)
ACCOUNTS = ("contoso", "fabrikam", "northwind")


def pres(account: str, i: int, availability: str, at: datetime) -> Presence:
    return Presence(account, i, f"agent{i}@{account}.com", f"{account}-{i}", f"Agent {i}", availability,
                    availability, "", False, at, sequence_number=f"{availability}-{at.timestamp()}")


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def replica(out: Path) -> Outputs:
    return Outputs(out, shared=True, accounts=ACCOUNTS)


def test_two_replicas_fill_the_whole_folder_files_with_every_account_once(tmp_path: Path) -> None:
    out = tmp_path / "out"
    a, b = replica(out), replica(out)
    with Store(tmp_path / "s.sqlite") as store:
        def ticks(outputs: Outputs, account: str, n: int) -> None:
            for k in range(n):
                tick = [pres(account, i, ("Available", "Busy", "Away")[(k + i) % 3], T0 + timedelta(seconds=k))
                        for i in range(1, 41)]
                outputs.tick(account, tick, T0 + timedelta(seconds=k), store.apply_presences(account, tick))

        # Replica a holds contoso and northwind, replica b fabrikam: they write at the same time.
        threads = [threading.Thread(target=ticks, args=(a, "contoso", 15)),
                   threading.Thread(target=ticks, args=(b, "fabrikam", 15)),
                   threading.Thread(target=ticks, args=(a, "northwind", 10))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        a.flush()  # presence.csv is rebuilt at most once a second; the job flushes when it ends
        b.flush()
        a.set_validation("contoso", [ValidationRow(i, f"agent{i}@contoso.com", f"agent{i}@contoso.com", "ok", (), "")
                                     for i in range(1, 41)])
        b.set_validation("fabrikam", [ValidationRow(7, "bad upn", "", "invalid", ("SYNTAX",), "error")])

        presence = rows(out / "presence.csv")
        keys = Counter((r["account_id"], r["agent_item_id"]) for r in presence)
        assert set(keys.values()) == {1} and len(keys) == 120  # every agent of every account, once
        assert [r["account_id"] for r in presence] == sorted(r["account_id"] for r in presence)
        assert {r["availability"] for r in presence if r["account_id"] == "fabrikam" and r["agent_item_id"] == "1"} \
            == {("Available", "Busy", "Away")[(14 + 1) % 3]}  # the last tick's value
        history = rows(out / "presence_history.csv")
        assert len(history) == len(list(store.history()))  # every transition of every replica, none twice
        assert len({tuple(r.values()) for r in history}) == len(history)
        own = rows(account_dir(out, "fabrikam") / "presence_history.csv")
        assert {r["account_id"] for r in own} == {"fabrikam"}
        assert len(own) == len(list(store.history(accounts=["fabrikam"])))
        validation = rows(out / "validation.csv")
        assert Counter(r["account_id"] for r in validation) == {"contoso": 40, "fabrikam": 1}
        assert not list(out.glob(".*.tmp"))  # no temporary file left behind


def test_a_new_holder_catches_the_accounts_history_up_once(tmp_path: Path) -> None:
    """The last holder committed a tick to the store and died before its CSV append: the next holder appends
    those rows (only that account's) to the account's history and to the whole folder's, once."""
    out = tmp_path / "out"
    old, new = replica(out), replica(out)
    with Store(tmp_path / "s.sqlite") as store:
        for k in range(3):
            tick = [pres("contoso", i, ("Available", "Busy")[(k + i) % 2], T0 + timedelta(seconds=k)) for i in (1, 2)]
            old.tick("contoso", tick, T0 + timedelta(seconds=k), store.apply_presences("contoso", tick))
        other = [pres("fabrikam", 1, "Away", T0), pres("fabrikam", 1, "Busy", T0 + timedelta(seconds=1))]
        for p in other:  # another account's rows in the store: never copied by contoso's catch-up
            store.apply_presences("fabrikam", [p])
        lost = [pres("contoso", i, "Offline", T0 + timedelta(seconds=9)) for i in (1, 2)]
        assert len(store.apply_presences("contoso", lost)) == 2  # in the store, not in any CSV
        before = len(rows(out / "presence_history.csv"))
        assert new.catch_up("contoso", store) == 2
        assert new.catch_up("contoso", store) == 0
        whole = rows(out / "presence_history.csv")
        assert len(whole) == before + 2 and {r["to_availability"] for r in whole[-2:]} == {"Offline"}
        assert {r["account_id"] for r in whole} == {"contoso"}
        assert len(rows(account_dir(out, "contoso") / "presence_history.csv")) == len(list(
            store.history(accounts=["contoso"])))


def test_account_folders_are_plain_names() -> None:
    root = Path("/o")
    assert account_dir(root, "contoso.com") == root / "accounts" / "contoso.com"
    odd = account_dir(root, "../x y/z")
    assert odd.parent == root / "accounts" and "/" not in odd.name and ".." not in odd.name
    assert account_dir(root, "../x y/z") != account_dir(root, "../x y/zz")
