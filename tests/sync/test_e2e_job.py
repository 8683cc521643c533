"""The job end to end against the local tenant: both tenants in one run, the answer key, write-back, dry-run,
SIGTERM, and no secret anywhere in what the runs left behind."""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import e2e_support as sup
import httpx
import pytest

from sync.emulator.server import EmulatorServer

ROOT = Path(__file__).resolve().parents[2]
WRITEBACK_COLUMNS = ("Availability", "Activity", "PresenceUpdated", "UpnStatus")


def answer_key(name: str) -> dict[int, dict[str, Any]]:
    doc = json.loads((ROOT / "sync" / "emulator" / "fixtures" / f"{name}.answers.json").read_text(encoding="utf-8"))
    return {int(i["item_id"]): i for i in doc["items"]}


def run_once(config: Path, state: Path, out: Path, *extra: str) -> Any:
    return sup.run_cli(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out), "--once",
                        *extra], cwd=config.parent)


def test_both_tenants_once_outputs_and_writeback(tmp_path: Path, emulator: EmulatorServer,
                                                 tenant_info: dict[str, Any], frozen_clock: httpx.Client) -> None:
    ctl = frozen_clock
    config, state, out = sup.both_tenants(tmp_path, tenant_info, emulator)
    before = {t: sup.list_fields(emulator, t) for t in ("contoso", "fabrikam")}

    first = run_once(config, state, out)
    assert first.returncode == 0, first.stderr
    presence = sup.assert_leading_columns(out / "presence.csv", sup.PRESENCE_COLUMNS)
    history = sup.assert_leading_columns(out / "presence_history.csv", sup.HISTORY_COLUMNS)
    validation = sup.assert_leading_columns(out / "validation.csv", sup.VALIDATION_COLUMNS)
    assert {r["account_id"] for r in validation} == {"contoso", "fabrikam"}

    # Every collectable agent (status ok/fixed) has exactly one presence row, with a user id and a presence.
    for acc in ("contoso", "fabrikam"):
        collectable = {int(r["agent_item_id"]) for r in validation
                       if r["account_id"] == acc and r["status"] in ("ok", "fixed")}
        rows = [r for r in presence if r["account_id"] == acc]
        assert Counter(int(r["agent_item_id"]) for r in rows) == Counter(collectable), acc
        assert all(r["user_id"] and r["availability"] and r["activity"] for r in rows), acc
        assert all(r["observed_at_utc"].endswith("Z") for r in rows)
    # First observations are the history's baseline: one per distinct user, all "from" empty.
    assert history and all(r["from_availability"] == "" for r in history)
    assert len({(r["account_id"], r["user_id"]) for r in history}) == len(history)

    # The write-back landed in the list items: presence columns for collected agents, UpnStatus for every item.
    for acc in ("contoso", "fabrikam"):
        items = sup.list_fields(emulator, acc)
        by_item = {int(r["agent_item_id"]): r for r in presence if r["account_id"] == acc}
        verdicts = {int(r["agent_item_id"]): r for r in validation if r["account_id"] == acc}
        wrong: list[tuple[int, str, Any, Any]] = []
        for item_id, v in verdicts.items():
            f = items[item_id]
            if not str(f.get("UpnStatus") or "").startswith(v["status"]):
                wrong.append((item_id, "UpnStatus", f.get("UpnStatus"), v["status"]))
            p = by_item.get(item_id)
            if p is not None:
                if (f.get("Availability"), f.get("Activity")) != (p["availability"], p["activity"]):
                    wrong.append((item_id, "presence", f.get("Availability"), p["availability"]))
                if not f.get("PresenceUpdated"):
                    wrong.append((item_id, "PresenceUpdated", None, "set"))
            elif f.get("Availability") != before[acc][item_id].get("Availability"):
                wrong.append((item_id, "Availability set for an agent that is not collected", None, None))
        assert not wrong, f"{acc}: {len(wrong)} item(s) not written back as expected: {wrong[:10]}"
    stats = ctl.get("/_emulator/stats").json()
    assert sup.write_requests(stats), stats["requests"]

    # A second --once (a new process, same state) finds nothing changed and writes nothing.
    ctl.post("/_emulator/stats/reset")
    after_first = {t: sup.list_fields(emulator, t) for t in ("contoso", "fabrikam")}
    second = run_once(config, state, out)
    assert second.returncode == 0, second.stderr
    stats = ctl.get("/_emulator/stats").json()
    assert sup.write_requests(stats) == {}, stats["requests"]
    assert {t: sup.list_fields(emulator, t) for t in ("contoso", "fabrikam")} == after_first
    assert stats["requests"].get("graph.presence.bulk", 0) == 2  # one chunk per tenant: it did collect
    assert sup.read_csv(out / "presence_history.csv")[1] == history  # frozen presence: no transition


def test_answer_key_matched_end_to_end(tmp_path: Path, emulator: EmulatorServer, tenant_info: dict[str, Any],
                                       ctl: httpx.Client) -> None:
    """validation.csv of a real run (in-process run_job) equals both fixtures' answer keys, row for row."""
    import asyncio

    from sync.config import load_settings
    from sync.job import run_job

    config, state, out = sup.both_tenants(tmp_path, tenant_info, emulator)
    settings, warnings = load_settings(config, {"state_dir": state, "out_dir": out, "once": True}, env={})
    assert warnings == []
    report = asyncio.run(run_job(settings, install_signals=False))
    assert report.exit_code == 0
    rows = sup.assert_leading_columns(out / "validation.csv", sup.VALIDATION_COLUMNS)
    mismatches: list[str] = []
    for name in ("contoso", "fabrikam"):
        key = answer_key(name)
        got = {int(r["agent_item_id"]): r for r in rows if r["account_id"] == name}
        if set(got) != set(key):
            mismatches.append(f"{name}: items missing {sorted(set(key) - set(got))}, "
                              f"unexpected {sorted(set(got) - set(key))}")
        for item_id in sorted(set(got) & set(key)):
            want, have = key[item_id], got[item_id]
            expected = {"normalized_upn": want["normalized_upn"], "status": want["status"],
                        "codes": ";".join(want["codes"]), "severity": want["severity"],
                        "suggestion": want["suggestion"]}
            actual = {k: have[k] for k in expected}
            if actual != expected:
                diff = {k: (actual[k], expected[k]) for k in expected if actual[k] != expected[k]}
                mismatches.append(f"{name} item {item_id} raw={want['raw']!r} ({want.get('kind')}): "
                                  f"got/expected {diff}")
    assert not mismatches, f"{len(mismatches)} mismatch(es):\n" + "\n".join(mismatches)


def test_dry_run_writes_nothing_and_says_what_it_would(tmp_path: Path, emulator: EmulatorServer,
                                                        tenant_info: dict[str, Any], ctl: httpx.Client) -> None:
    config, state, out = sup.both_tenants(tmp_path, tenant_info, emulator)
    before = {t: sup.list_fields(emulator, t) for t in ("contoso", "fabrikam")}
    # Give every item a value the job will want to change, so a dry run has something to hold back.
    for t in ("contoso", "fabrikam"):
        ctl.post("/_emulator/lists/items", json={"tenant": t, "update": [
            {"id": i, "fields": {"UpnStatus": "stale value"}} for i in before[t]]})
    before = {t: sup.list_fields(emulator, t) for t in ("contoso", "fabrikam")}
    ctl.post("/_emulator/stats/reset")

    proc = run_once(config, state, out, "--dry-run")
    assert proc.returncode == 0, proc.stderr
    stats = ctl.get("/_emulator/stats").json()
    assert sup.write_requests(stats) == {}, stats["requests"]
    assert {t: sup.list_fields(emulator, t) for t in ("contoso", "fabrikam")} == before
    log = proc.stderr + proc.stdout
    for acc in ("contoso", "fabrikam"):
        planned = [ln for ln in log.splitlines() if f"dry-run: account {acc} item" in ln]
        assert planned, f"no dry-run line for {acc}:\n{log[-2000:]}"
        assert all("UpnStatus=" in ln for ln in planned)
    # The CSVs are still written.
    assert sup.assert_leading_columns(out / "presence.csv", sup.PRESENCE_COLUMNS)
    assert sup.assert_leading_columns(out / "validation.csv", sup.VALIDATION_COLUMNS)
    assert sup.assert_leading_columns(out / "presence_history.csv", sup.HISTORY_COLUMNS)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_after_first_cycle_exits_0_with_complete_files(tmp_path: Path, emulator: EmulatorServer,
                                                              tenant_info: dict[str, Any], ctl: httpx.Client,
                                                              sig: signal.Signals) -> None:
    config, state, out = sup.both_tenants(tmp_path, tenant_info, emulator)
    job = sup.Running(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out),
                       "--interval", "1"], cwd=tmp_path)
    try:
        assert job.wait_for(lambda lines: sum(sup.CYCLE_MARK in ln for ln in lines) >= 2, 30), job.text
    finally:
        code = job.terminate(sig, timeout=10)
    assert code == 0, job.text
    assert "Traceback" not in job.text
    validation = sup.assert_leading_columns(out / "validation.csv", sup.VALIDATION_COLUMNS)
    presence = sup.assert_leading_columns(out / "presence.csv", sup.PRESENCE_COLUMNS)
    sup.assert_leading_columns(out / "presence_history.csv", sup.HISTORY_COLUMNS)
    for acc in ("contoso", "fabrikam"):
        collectable = sum(1 for r in validation if r["account_id"] == acc and r["status"] != "invalid")
        assert collectable and sum(1 for r in presence if r["account_id"] == acc) == collectable, acc
    assert sorted(p.name for p in out.iterdir()) == ["presence.csv", "presence_history.csv", "validation.csv"]


def test_no_secret_or_token_in_any_output(tmp_path: Path, emulator: EmulatorServer, tenant_info: dict[str, Any],
                                          ctl: httpx.Client) -> None:
    """Runs last in this file: every folder and process output of the session's runs, read for secrets."""
    if not sup.ARTIFACTS.dirs:  # run on its own: make something to read
        config, state, out = sup.both_tenants(tmp_path, tenant_info, emulator)
        assert run_once(config, state, out).returncode == 0
    secrets = sup.known_secrets(tenant_info, emulator)
    assert sup.CONTOSO_APP_SECRET in secrets and sup.FABRIKAM_SVC[1] in secrets
    assert any(s.startswith("eyJ") for s in secrets), "the tenant issued no access token?"
    files = [f for d in sup.ARTIFACTS.dirs if d.exists() for f in d.rglob("*") if f.is_file()]
    assert any(f.name.endswith(".sqlite") for f in files) and any(f.suffix == ".csv" for f in files)
    assert any(f.suffix == ".cache" for f in files), "no token cache among the outputs"
    assert sup.ARTIFACTS.outputs
    found = sup.leaks(secrets, files, sup.ARTIFACTS.outputs)
    assert not found, "secrets in clear:\n" + "\n".join(found)
