"""A damaged or unusable state: a clear message, a documented exit code, and nothing lost that can be kept.

- config.xml over 1 MB: refused unread, exit 2.
- A state directory that cannot be written: exit 2 naming the path and the fix.
- A damaged SQLite store: moved aside (its new name in the message), the caches rebuilt from Graph, exit 0.
- A damaged token cache: moved aside, and the account signs in again (a secret account needs no human).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import e2e_support as sup

from sync.emulator.server import EmulatorServer


def test_a_config_over_1_mb_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "config.xml"
    big.write_text("<Configuration>" + "<!-- padding -->" * 70_000 + "</Configuration>", encoding="utf-8")
    ran = sup.run_cli(["validate", "--config", str(big), "--state-dir", str(tmp_path / "state")], cwd=tmp_path)
    assert ran.returncode == 2, ran.stderr
    assert "is larger than 1 MB" in ran.stderr and str(big) in ran.stderr
    assert "Traceback" not in ran.stderr


def test_a_state_directory_that_cannot_be_written_exits_2_with_the_path(tmp_path: Path, emulator: EmulatorServer,
                                                                         tenant_info: dict[str, Any]) -> None:
    args, state, out = sup.contoso_app_run(tmp_path, tenant_info, emulator.tls.ca_cert)  # writes the key
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the state directory should be\n", encoding="utf-8")
    bad = blocked / "state"  # cannot be created, whoever runs the test (root included)
    at = args.index("--state-dir")
    args = args[:at + 1] + [str(bad)] + args[at + 2:]
    ran = sup.run_cli(args, cwd=tmp_path, env={"PRESENCE_SYNC_KEY_FILE": str(state / "secret.key")})
    flat = " ".join(ran.stderr.split())
    assert ran.returncode == 2, ran.stderr
    assert str(bad) in flat and "cannot be written" in flat and "--state-dir" in flat, ran.stderr
    assert "Traceback" not in ran.stderr


def test_a_damaged_store_is_moved_aside_and_rebuilt(tmp_path: Path, emulator: EmulatorServer,
                                                     tenant_info: dict[str, Any]) -> None:
    args, state, out = sup.contoso_app_run(tmp_path, tenant_info, emulator.tls.ca_cert)
    first = sup.run_cli(args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    db = state / "presence-sync.sqlite"
    assert db.exists()
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
    db.write_bytes(b"this is not a database" * 500)  # garbage over every page, header included
    again = sup.run_cli(args, cwd=tmp_path)
    flat = " ".join(again.stderr.split())
    assert again.returncode == 0, again.stderr
    aside = sorted(state.glob("presence-sync.sqlite.damaged-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not a database")
    assert aside[0].name in flat and "Traceback" not in again.stderr
    with sqlite3.connect(db) as con:  # a new, whole store with the caches filled again
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT count(*) FROM users").fetchone()[0] > 0


def test_a_damaged_token_cache_is_moved_aside_and_the_app_signs_in_again(
        tmp_path: Path, emulator: EmulatorServer, tenant_info: dict[str, Any]) -> None:
    args, state, out = sup.contoso_app_run(tmp_path, tenant_info, emulator.tls.ca_cert)
    assert sup.run_cli(args, cwd=tmp_path).returncode == 0
    cache = state / "tokens" / "contoso.cache"
    assert cache.exists(), sorted(p.name for p in (state / "tokens").iterdir())
    cache.write_bytes(b"\x00garbage")
    again = sup.run_cli(args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "token cache" in again.stderr and "Traceback" not in again.stderr
    assert list((state / "tokens").glob("contoso.cache.damaged-*"))
