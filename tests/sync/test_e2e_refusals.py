"""The job against a local tenant that refuses request shapes (``refuse`` fault switch): for each refusal, and all
of them together, a cold start still finishes with the right presence, validation and write-back, says once
which shape it now uses, and a restart does not ask for the refused shape again that day.

The directory's pages are capped at 40 users (``users_page_cap``), so contoso's 162 users take the partitioned
read, and every rung of the directory ladder is really walked.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import e2e_support as sup
import httpx
import pytest

from sync.emulator.server import EmulatorServer

ROOT = Path(__file__).resolve().parents[2]
ALL = ["startswith", "ge", "le", "advanced", "deltatoken-latest", "batch", "list-route", "list-threshold"]


def answer_key(name: str) -> dict[int, dict[str, Any]]:
    doc = json.loads((ROOT / "sync" / "emulator" / "fixtures" / f"{name}.answers.json").read_text(encoding="utf-8"))
    return {int(i["item_id"]): i for i in doc["items"]}


@pytest.fixture()
def refusing(ctl: httpx.Client) -> Iterator[httpx.Client]:
    """Small directory pages; faults and limits back to normal afterwards."""
    before = ctl.get("/_emulator/limits").json()
    ctl.post("/_emulator/limits", json={"users_page_cap": 40, "sharepoint_ru_per_minute": 50_000})
    try:
        yield ctl
    finally:
        ctl.post("/_emulator/faults", json={"reset": True})
        ctl.post("/_emulator/limits", json={"users_page_cap": before.get("users_page_cap", 0),
                                            "sharepoint_ru_per_minute": before["sharepoint_ru_per_minute"]})


def refuse(ctl: httpx.Client, shapes: list[str]) -> None:
    r = ctl.post("/_emulator/faults", json={"refuse": shapes})
    assert r.status_code == 200, r.text


def refused_counts(ctl: httpx.Client) -> dict[str, int]:
    faults = ctl.get("/_emulator/stats").json().get("faults_injected", {})
    return {k: int(v) for k, v in faults.items() if k.startswith("refuse_")}


def run_once(config: Path, state: Path, out: Path) -> Any:
    return sup.run_cli(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out), "--once"],
                       cwd=config.parent, timeout=120)


def refused_run(ctl: httpx.Client, shapes: list[str], tmp_path: Path, emulator: EmulatorServer,
                tenant_info: dict[str, Any], exit_code: int) -> str:
    """``run --once`` of both tenants against a tenant refusing ``shapes``: its log, after the exit code and the
    absence of a traceback are checked."""
    refuse(ctl, shapes)
    config, state, out = sup.both_tenants(tmp_path, tenant_info, emulator)
    proc = run_once(config, state, out)
    log = str(proc.stdout + proc.stderr)
    assert proc.returncode == exit_code, log[-3000:]
    assert "Traceback" not in log
    return log


def check_outputs(emulator: EmulatorServer, out: Path, accounts: tuple[str, ...]) -> None:
    """validation.csv equals the answer key; every collectable agent has a presence; write-back landed."""
    validation = sup.assert_leading_columns(out / "validation.csv", sup.VALIDATION_COLUMNS)
    presence = sup.assert_leading_columns(out / "presence.csv", sup.PRESENCE_COLUMNS)
    for name in accounts:
        key = answer_key(name)
        got = {int(r["agent_item_id"]): r for r in validation if r["account_id"] == name}
        assert set(got) == set(key), name
        wrong = [(i, got[i]["status"], key[i]["status"]) for i in key
                 if (got[i]["status"], got[i]["codes"], got[i]["normalized_upn"])
                 != (key[i]["status"], ";".join(key[i]["codes"]), key[i]["normalized_upn"])]
        assert not wrong, f"{name}: {wrong[:5]}"
        collectable = {i for i, r in got.items() if r["status"] in ("ok", "fixed")}
        rows = {int(r["agent_item_id"]): r for r in presence if r["account_id"] == name}
        assert set(rows) == collectable, name
        assert all(r["user_id"] and r["availability"] for r in rows.values())
        items = sup.list_fields(emulator, name)
        unwritten = [i for i, v in got.items() if not str(items[i].get("UpnStatus") or "").startswith(v["status"])]
        assert not unwritten, f"{name}: UpnStatus not written back for {unwritten[:10]}"
        moved = [i for i, p in rows.items() if items[i].get("Availability") != p["availability"]]
        assert not moved, f"{name}: presence not written back for {moved[:10]}"


# scenario -> (refused shapes, what the warnings must name)
SCENARIOS: dict[str, tuple[list[str], list[str]]] = {
    "startswith": (["startswith"], ["refused UPN partitions by startsWith", "using UPN ranges (ge/le)"]),
    "ge": (["ge"], []),  # startsWith comes first: ge is never asked for
    "startswith+ge": (["startswith", "ge"], ["using UPN ranges as advanced queries"]),
    "plain-paging": (["startswith", "ge", "le", "advanced"], ["using one /users read, page after page"]),
    "deltatoken-latest": (["deltatoken-latest"], ["using a full /users/delta round beside the read"]),
    "batch": (["batch"], ["refused $batch of 20 requests", "refused SharePoint REST $batch"]),
    "list-threshold": (["list-threshold"], []),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_a_refused_shape_falls_back_and_the_outputs_are_right(name: str, tmp_path: Path, emulator: EmulatorServer,
                                                              tenant_info: dict[str, Any],
                                                              refusing: httpx.Client) -> None:
    shapes, said = SCENARIOS[name]
    log = refused_run(refusing, shapes, tmp_path, emulator, tenant_info, 0)
    check_outputs(emulator, tmp_path / "out", ("contoso", "fabrikam"))
    for text in said:
        assert text in log, f"{text!r} not in the log:\n{log[-3000:]}"
    warnings = [ln for ln in log.splitlines() if "instead (remembered until" in ln]
    assert len(warnings) == len(set(warnings)), warnings  # once per account and shape


def test_every_shape_refused_at_once(tmp_path: Path, emulator: EmulatorServer, tenant_info: dict[str, Any],
                                     refusing: httpx.Client) -> None:
    """The delegated account finishes on the slowest rungs; the application account has no way to its Agent list
    and says so, with the fix, and exits non-zero; neither holds the other."""
    log = refused_run(refusing, ALL, tmp_path, emulator, tenant_info, 1)
    check_outputs(emulator, tmp_path / "out", ("fabrikam",))
    line = next(ln for ln in log.splitlines() if "every shape of the Agent list" in ln)
    assert "contoso" in line and "give account contoso a delegated login" in line.lower() and "--roster" in line
    assert "using one /users read, page after page" in log


def test_list_route_refused_for_an_application_account_says_what_to_do(tmp_path: Path, emulator: EmulatorServer,
                                                                         tenant_info: dict[str, Any],
                                                                         refusing: httpx.Client) -> None:
    refuse(refusing, ["list-route"])
    config, state, out = sup.both_tenants(tmp_path, tenant_info, emulator)
    proc = run_once(config, state, out)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 1, log[-3000:]
    assert "refused Graph's list route (/sites/.../lists) for the Agent list" in log
    assert "using SharePoint REST (/_api/web/lists)" in log
    assert "give account contoso a delegated login" in log.lower()
    check_outputs(emulator, out, ("fabrikam",))  # the delegated account reads SharePoint REST anyway


def test_a_restart_remembers_what_was_refused(tmp_path: Path, emulator: EmulatorServer,
                                              tenant_info: dict[str, Any], refusing: httpx.Client) -> None:
    refuse(refusing, ["startswith", "ge", "le", "advanced", "batch", "deltatoken-latest"])
    config, state, out = sup.both_tenants(tmp_path, tenant_info, emulator)
    first = run_once(config, state, out)
    assert first.returncode == 0, first.stderr[-3000:]
    before = refused_counts(refusing)
    assert before.get("refuse_startswith", 0) >= 1 and before.get("refuse_batch", 0) >= 1, before
    # A second cold start from the same store (its directory forgotten): the refused shapes are not asked again.
    import sqlite3
    with sqlite3.connect(state / "presence-sync.sqlite") as db:
        db.execute("DELETE FROM users")
        db.execute("UPDATE directory_state SET delta_link = NULL")
    second = run_once(config, state, out)
    log = second.stdout + second.stderr
    assert second.returncode == 0, log[-3000:]
    assert refused_counts(refusing) == before
    assert "instead (remembered until" not in log  # no new WARNING
    assert "the directory read uses one /users read, page after page" in log
    check_outputs(emulator, out, ("contoso", "fabrikam"))


def test_a_running_job_reads_presence_while_every_directory_shape_but_paging_is_refused(
        tmp_path: Path, emulator: EmulatorServer, tenant_info: dict[str, Any], refusing: httpx.Client) -> None:
    """The loops, not --once: presence ticks from the first seconds on, each refusal is said once, and ticks go on."""
    refuse(refusing, ["startswith", "ge", "le", "advanced", "deltatoken-latest", "batch"])
    config, state, out = sup.both_tenants(tmp_path, tenant_info, emulator)
    job = sup.Running(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out),
                       "--interval", "1"], cwd=tmp_path)
    try:
        assert job.wait_for(lambda lines: all(sum(f"account {a}{sup.CYCLE_MARK}" in ln for ln in lines) >= 4
                                              for a in ("contoso", "fabrikam")), 60), job.text
    finally:
        code = job.terminate()
    assert code == 0, job.text
    assert "Traceback" not in job.text
    warnings = [ln for ln in job.text.splitlines() if "instead (remembered until" in ln]
    assert len(warnings) == len(set(warnings)) and any("page after page" in w for w in warnings), warnings
    for acc in ("contoso", "fabrikam"):
        ticks = job.cycle_lines(acc)
        assert any("presences=0" not in t for t in ticks), ticks
