"""Two replicas of `run --interval 1 --store postgresql://...` against the local tenant: they split the two
accounts, the one that gets SIGTERM hands its account over and exits 0, and the other one takes it and reads its
presence; no account is ever held by both. Each replica's /readyz and /metrics speak of the accounts it holds."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import e2e_support as sup
import httpx
import psycopg
from metrics_support import free_port, samples, value, wait_http

from sync.bench.postgres import TemporaryPostgres
from sync.emulator.server import EmulatorServer


def holders(url: str) -> dict[str, str | None]:
    with psycopg.connect(url) as conn:
        return {r[0]: r[1] for r in conn.execute(
            "SELECT account_id, holder FROM leases WHERE expires_at > now() OR holder IS NULL").fetchall()}


def until(pred: Any, timeout: float, what: str) -> float:
    start = time.monotonic()
    while not pred():
        assert time.monotonic() - start < timeout, f"not within {timeout} s: {what}"
        time.sleep(0.1)
    return time.monotonic() - start


def replica(config: Path, tmp: Path, name: str, url: str, port: int) -> sup.Running:
    return sup.Running(["run", "--config", str(config), "--state-dir", str(tmp / f"state-{name}"), "--out",
                        str(tmp / "out"), "--interval", "1", "--store", url, "--metrics-port", str(port)],
                       cwd=tmp,
                       env={"PRESENCE_SYNC_KEY_FILE": str(tmp / "state" / "secret.key")})  # one key, every replica


def test_two_replicas_split_the_accounts_and_hand_over_on_sigterm(
        tmp_path: Path, emulator: EmulatorServer, tenant_info: dict[str, Any], postgres: TemporaryPostgres) -> None:
    url = postgres.create_database("replicas_e2e")
    config, _, _ = sup.both_tenants(tmp_path, tenant_info, emulator)
    ports = {"a": free_port(), "b": free_port()}
    a = replica(config, tmp_path, "a", url, ports["a"])
    b = None
    try:
        assert a.wait_for(lambda ls: sum("took account" in ln for ln in ls) == 2, 40), a.text[-3000:]
        assert a.wait_for(lambda ls: len([ln for ln in ls if sup.CYCLE_MARK in ln]) >= 2, 40), a.text[-3000:]
        assert set(holders(url).values()) == {next(iter(holders(url).values()))}  # one replica holds both
        b = replica(config, tmp_path, "b", url, ports["b"])
        until(lambda: len(set(holders(url).values()) - {None}) == 2, 20, "the accounts split between the replicas")
        assert a.wait_for(lambda ls: any("handed account" in ln for ln in ls), 5), a.text[-3000:]
        observed_each_replica(ports, holders(url), a, b)
        shown = sup.run_cli(["status", "--store", url, "--json"], cwd=tmp_path)
        assert shown.returncode == 0 and postgres.password not in shown.stdout, shown.stderr
        doc = json.loads(shown.stdout)
        assert doc["store"].startswith("postgresql://postgres:***@127.0.0.1:")
        assert sorted(r["accounts"] for r in doc["replicas"] if r["live"]) == [1, 1]
        assert {x["account"] for x in doc["accounts"] if x["holder"]} == {"contoso", "fabrikam"}
        table = sup.run_cli(["status"], cwd=tmp_path, env={"PRESENCE_SYNC_STORE": url})
        assert table.returncode == 0 and "contoso" in table.stdout and "lease expires" in table.stdout
        taken_by_b = [ln for ln in b.lines if "took account" in ln]
        assert len(taken_by_b) == 1, b.text[-3000:]
        moved = "contoso" if "took account contoso" in taken_by_b[0] else "fabrikam"
        assert b.wait_for(lambda ls: any(sup.CYCLE_MARK in ln and f"account {moved}:" in ln for ln in ls), 30), \
            b.text[-3000:]
        lines_before = len(a.lines)
        t0 = time.monotonic()
        assert b.terminate(signal.SIGTERM, timeout=30) == 0, b.text[-3000:]
        assert any(f"handed account {moved} over (this replica stops)" in ln for ln in b.lines), b.text[-3000:]
        assert a.wait_for(lambda ls: any(f"took account {moved}" in ln for ln in ls[lines_before:]), 10), \
            a.text[-3000:]
        assert a.wait_for(lambda ls: any(sup.CYCLE_MARK in ln and f"account {moved}:" in ln
                                         for ln in ls[lines_before:]), 10), a.text[-3000:]
        took_over = time.monotonic() - t0
        assert took_over < 12, took_over
        assert len(set(holders(url).values())) == 1
    finally:
        if b is not None and b.proc.poll() is None:
            b.terminate()
        code = a.terminate(signal.SIGTERM, timeout=30)
    assert code == 0, a.text[-3000:]
    assert holders(url) == {"contoso": None, "fabrikam": None}  # both released on the way out
    whole_outputs_of_both(tmp_path / "out", url)
    for r in (a, b):
        assert r is not None and "Traceback" not in r.text and postgres.password not in r.text


def whole_outputs_of_both(out: Path, url: str) -> None:
    """The shared OutDir: presence.csv and validation.csv hold every agent of both accounts once; the history holds
    every transition the store kept, once, whichever replica read it."""
    presence = sup.read_csv(out / "presence.csv")[1]
    keys = [(r["account_id"], r["agent_item_id"]) for r in presence]
    assert len(keys) == len(set(keys)) and {k[0] for k in keys} == {"contoso", "fabrikam"}
    validation = sup.read_csv(out / "validation.csv")[1]
    with psycopg.connect(url) as conn:
        assert len(validation) == conn.execute("SELECT count(*) FROM validation").fetchone()[0]
        stored = conn.execute("SELECT count(*) FROM transitions").fetchone()[0]
    history = [tuple(r.values()) for r in sup.read_csv(out / "presence_history.csv")[1]]
    assert len(history) == len(set(history)) == stored, (len(history), len(set(history)), stored)
    for account in ("contoso", "fabrikam"):
        own = sup.read_csv(out / "accounts" / account / "presence.csv")[1]
        assert own and {r["account_id"] for r in own} == {account}


def observed_each_replica(ports: dict[str, int], held: dict[str, str | None], a: sup.Running,
                          b: sup.Running) -> None:
    """/readyz is ready once each account a replica holds had a good tick, and names the accounts it does not
    hold; /metrics counts its held accounts, its lease changes and its renewal latency."""
    for name, run in (("a", a), ("b", b)):
        with httpx.Client(base_url=f"http://127.0.0.1:{ports[name]}", timeout=5) as client:
            ready = wait_http(client, "/readyz", 200, timeout=20)
            assert ready.status_code == 200, (ready.text, run.text[-3000:])
            doc = ready.json()
            mine = {acc for acc, entry in doc["accounts"].items() if entry.get("held", True)}
            replica_id = doc["replica"]
            assert mine == {acc for acc, holder in held.items() if holder == replica_id}, (doc, held)
            assert len(mine) == 1 and all(doc["accounts"][acc]["ready"] for acc in mine), doc
            found = samples(client.get("/metrics").text)
            assert value(found, "presence_sync_replica_accounts_held", replica=replica_id) == 1
            assert value(found, "presence_sync_account_held", account=next(iter(mine))) == 1
            assert value(found, "presence_sync_account_held") == 1  # the other account: 0
            assert value(found, "presence_sync_lease_changes_total", replica=replica_id) >= 1
            slowest = value(found, "presence_sync_lease_renewal_seconds", replica=replica_id, quantile="1")
            assert 0 < slowest < 2, slowest
            assert value(found, "presence_sync_lease_database_failing", replica=replica_id) == 0
            other = ({"contoso", "fabrikam"} - mine).pop()
            assert value(found, "presence_sync_cycles_total", account=other) == 0 or name == "a"
            assert not [n for n, lab, _ in found if lab.get("account") == other and n == "presence_sync_agents"]


def test_status_without_a_postgresql_store_says_what_to_pass(tmp_path: Path) -> None:
    shown = sup.run_cli(["status"], cwd=tmp_path, env={"PRESENCE_SYNC_STORE": ""})
    assert shown.returncode == 2 and "pass --store postgresql://" in shown.stderr and "Traceback" not in shown.stderr
