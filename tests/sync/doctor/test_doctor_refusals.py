"""The "request shapes" row end to end, against a local tenant that refuses shapes (the ``refuse`` fault switch):
all accepted is ok; each refusal is named with the rung the job uses instead; a refused list route fails an
application account (nothing left) but not a delegated one. The faults are reset after every test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import doctor_faults as faults
import e2e_support as sup
import httpx
import pytest

from sync.config import load_settings
from sync.doctor import AccountReport, Row, run_doctor
from sync.emulator.server import EmulatorServer


@pytest.fixture()
def refuse(ctl: httpx.Client) -> Iterator[Any]:
    """``refuse(shapes)`` switches the tenant's refusals on; every fault is reset afterwards."""
    def switch(shapes: list[str]) -> None:
        r = ctl.post("/_emulator/faults", json={"refuse": shapes})
        assert r.status_code == 200, r.text
    try:
        yield switch
    finally:
        ctl.post("/_emulator/faults", json={"reset": True})


def doctor(tmp: Path, info: dict[str, Any], ca_file: Path) -> dict[str, dict[str, Row]]:
    """Both healthy accounts: account id -> check -> row."""
    config, state = faults.healthy().write(tmp, info, ca_file)
    settings, _ = load_settings(config, {"state_dir": state}, env={}, dotenv_path=tmp / "no.env")
    reports: list[AccountReport] = run_doctor(settings)
    return {rep.account_id: {r.check: r for r in rep.rows} for rep in reports}


def others_ok(rows: dict[str, Row]) -> None:
    assert {k: r.status for k, r in rows.items() if k != "shapes"} == {k: "ok" for k in rows if k != "shapes"}


def refusals(ctl: httpx.Client) -> dict[str, int]:
    """How often the tenant refused each shape so far (the emulator's fault counters)."""
    injected = ctl.get("/_emulator/stats").json().get("faults_injected", {})
    return {k: int(v) for k, v in injected.items() if k.startswith("refuse_")}


def values(emulator: EmulatorServer) -> dict[str, Any]:
    return {t: sup.list_fields(emulator, t) for t in ("contoso", "fabrikam")}


def test_a_tenant_accepting_every_shape_is_ok(tmp_path: Path, tenant_info: dict[str, Any], ca_file: Path,
                                              refuse: Any) -> None:
    got = doctor(tmp_path, tenant_info, ca_file)
    app, user = got["contoso"]["shapes"], got["fabrikam"]["shapes"]
    assert app.status == "ok" and app.fix == "", app
    assert app.detail.startswith("accepted: startswith, ge, le, advanced, deltatoken-latest, batch, list-route;")
    assert "directory read: UPN partitions by startsWith" in app.detail
    assert "Agent list: Graph's list route" in app.detail
    assert user.status == "ok" and "rest-batch" in user.detail.split(";")[0], user
    assert "SharePoint REST writes: SharePoint REST $batch of 100 updates" in user.detail
    assert [r for r in got["contoso"]][-2:] == ["shapes", "budget"]


def test_startswith_and_ge_refused_the_read_uses_advanced_ranges(
        tmp_path: Path, tenant_info: dict[str, Any], ca_file: Path, emulator: EmulatorServer, ctl: httpx.Client,
        refuse: Any) -> None:
    before, counted = values(emulator), refusals(ctl)
    refuse(["startswith", "ge"])
    got = doctor(tmp_path, tenant_info, ca_file)
    after = refusals(ctl)
    # ONE probe per shape and account: the tenant refused each shape twice (two accounts), nothing else
    assert {k: n - counted.get(k, 0) for k, n in after.items() if n != counted.get(k, 0)} == {
        "refuse_startswith": 2, "refuse_ge": 2}
    for acc in ("contoso", "fabrikam"):
        row = got[acc]["shapes"]
        assert row.status == "warn", row
        assert row.detail.startswith("accepted: le, advanced, deltatoken-latest, batch, list-route")
        assert "; refused: startswith, ge;" in row.detail
        assert ("directory read: UPN ranges as advanced queries (ConsistencyLevel: eventual, $count=true) "
                "(startswith, ge refused)") in row.detail
        assert row.fix.startswith("nothing to change: for the directory read the job uses UPN ranges as "
                                  "advanced queries")
        others_ok(got[acc])
    assert values(emulator) == before  # doctor wrote nothing but the write probe's unchanged values


def test_every_partitioned_read_refused_the_read_pages(tmp_path: Path, tenant_info: dict[str, Any], ca_file: Path,
                                                       refuse: Any) -> None:
    refuse(["startswith", "ge", "le", "advanced"])
    got = doctor(tmp_path, tenant_info, ca_file)
    for acc in ("contoso", "fabrikam"):
        row = got[acc]["shapes"]
        assert row.status == "warn", row
        assert "refused: startswith, ge, le, advanced;" in row.detail
        assert "paging" in row.detail.split(";")[0]  # plain paging was probed, and accepted
        assert "directory read: one /users read, page after page (startswith, ge, le, advanced refused)" in (
            row.detail)
        assert "one /users read, page after page instead" in row.fix
        others_ok(got[acc])


def test_batch_and_deltatoken_latest_refused(tmp_path: Path, tenant_info: dict[str, Any], ca_file: Path,
                                             refuse: Any) -> None:
    refuse(["batch", "deltatoken-latest"])
    got = doctor(tmp_path, tenant_info, ca_file)
    for acc in ("contoso", "fabrikam"):
        row = got[acc]["shapes"]
        assert row.status == "warn", row
        assert "; refused: deltatoken-latest, batch" in row.detail
        assert row.detail.startswith("accepted: startswith, ge, le, advanced, list-route, delta;")
        assert "directory change cursor: a full /users/delta round beside the read (deltatoken-latest refused)" in (
            row.detail)
        assert "Graph requests in bulk: one request per call (batch refused)" in row.detail
        assert "full /users/delta round beside the read" in row.fix and "one request per call" in row.fix
        others_ok(got[acc])
    user = got["fabrikam"]["shapes"]  # the tenant refuses SharePoint REST $batch too
    assert "SharePoint REST writes: one SharePoint REST update per item (rest-batch refused)" in user.detail
    assert "100 times the requests" in user.fix


def test_a_refused_list_route_leaves_an_application_account_nothing(
        tmp_path: Path, tenant_info: dict[str, Any], ca_file: Path, refuse: Any) -> None:
    refuse(["list-route"])
    got = doctor(tmp_path, tenant_info, ca_file)
    app = got["contoso"]
    assert app["agent_list"].status == "fail" and "HTTP 501" in app["agent_list"].detail, app["agent_list"]
    assert "delegated login" in app["agent_list"].fix and "--roster FILE.csv" in app["agent_list"].fix
    assert app["shapes"].status == "fail" and "Agent list: nothing left (list-route" in app["shapes"].detail
    assert "delegated login" in app["shapes"].fix
    user = got["fabrikam"]
    assert user["agent_list"].status == "warn" and "SharePoint REST" in user["agent_list"].detail, user["agent_list"]
    assert user["shapes"].status == "warn" and "refused: list-route" in user["shapes"].detail
    assert "the job does not use list-route for this account" in user["shapes"].fix
