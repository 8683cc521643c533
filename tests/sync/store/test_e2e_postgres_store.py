"""``run --store postgresql://...`` against the local tenant and a real PostgreSQL server: the job keeps its whole
state there (and none in the state directory), a second run continues from it, and a bad URL or password is a
clear error that never shows the password."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import e2e_support as sup

from sync.bench.postgres import TemporaryPostgres
from sync.emulator.server import EmulatorServer

from .conftest import query


def run_once(config: Path, state: Path, out: Path, *extra: str, env: dict[str, str] | None = None) -> Any:
    return sup.run_cli(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out), "--once",
                        *extra], cwd=config.parent, timeout=120, env=env)


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_job_keeps_its_state_in_postgresql_and_a_second_run_continues_from_it(
        tmp_path: Path, emulator: EmulatorServer, tenant_info: dict[str, Any], postgres: TemporaryPostgres) -> None:
    url = postgres.create_database("e2e_run")
    config, state, out = sup.both_tenants(tmp_path, tenant_info, emulator)
    first = run_once(config, state, out, "--store", url)
    log = first.stdout + first.stderr
    assert first.returncode == 0, log[-3000:]
    assert postgres.password not in log and "Traceback" not in log
    assert not (state / "presence-sync.sqlite").exists()  # the whole state is in PostgreSQL
    presence, validation = rows(out / "presence.csv"), rows(out / "validation.csv")
    assert {r["account_id"] for r in presence} == {"contoso", "fabrikam"}
    assert query(url, "SELECT count(*) FROM validation") == [(len(validation),)]
    assert query(url, "SELECT count(*) FROM current")[0][0] == len({(r["account_id"], r["user_id"]) for r in presence
                                                                     if r["user_id"]})
    links = dict(query(url, "SELECT account_id, delta_link FROM directory_state"))
    assert set(links) == {"contoso", "fabrikam"} and all(links.values())  # the next run continues by delta
    users = query(url, "SELECT account_id, count(*) FROM users GROUP BY account_id")
    assert dict(users)["contoso"] > 0 and dict(users)["fabrikam"] > 0
    cycles = query(url, "SELECT count(*) FROM cycles")[0][0]

    second = run_once(config, state, out, env={"PRESENCE_SYNC_STORE": url})  # the same store, from the environment
    assert second.returncode == 0, (second.stdout + second.stderr)[-3000:]
    assert query(url, "SELECT count(*) FROM cycles")[0][0] == cycles + 2  # one more per account, same store
    assert query(url, "SELECT count(*) FROM validation") == [(len(validation),)]
    assert rows(out / "validation.csv") == validation
    assert not (state / "presence-sync.sqlite").exists()


def test_a_wrong_password_or_a_bad_url_is_a_clear_error_without_the_password(
        tmp_path: Path, emulator: EmulatorServer, tenant_info: dict[str, Any], postgres: TemporaryPostgres) -> None:
    config, state, out = sup.both_tenants(tmp_path, tenant_info, emulator)
    wrong = postgres.url().replace(postgres.password, "Wr0ng-Secret-Pw")
    proc = run_once(config, state, out, "--store", wrong)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "Traceback" not in log, log[-3000:]
    assert "cannot connect to the store postgresql://postgres:***@127.0.0.1:" in log
    assert "password authentication failed" in log and "Wr0ng-Secret-Pw" not in log
    assert not (out / "presence.csv").exists()

    config.write_text(config.read_text(encoding="utf-8").replace(
        "<Accounts>", '<Store Url="mysql://u:Pw-In-Config@db/x"/>\n    <Accounts>', 1), encoding="utf-8")
    proc = run_once(config, state, out)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 2 and "Traceback" not in log, log[-3000:]
    assert "Store/@Url" in log and "is not a PostgreSQL URL" in log and "Pw-In-Config" not in log
