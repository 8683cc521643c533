"""``presence-sync doctor`` end to end against the local tenant: healthy accounts, and each fault named with its
fix (wrong or expired secret, consent missing, permissions missing, a write-back or UPN column missing, no
login, an untrusted CA), bad configuration, beside a running job's lock."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import doctor_faults as faults
import e2e_support as sup
import pytest

from sync.config import load_settings
from sync.doctor import AccountReport, Row, exit_code, run_doctor
from sync.emulator.server import EmulatorServer
from sync.lock import state_lock
from sync.login import login_account


def doctor(setup: faults.Setup, tmp: Path, info: dict[str, Any], ca_file: Path) -> list[AccountReport]:
    config, state = setup.write(tmp, info, ca_file)
    settings, _ = load_settings(config, {"state_dir": state}, env={}, dotenv_path=tmp / "no.env")
    return run_doctor(settings)


def values(emulator: EmulatorServer, tenant: str) -> dict[int, dict[str, Any]]:
    """Every item's non-empty values (an empty column reads the same as one never set)."""
    return {i: {k: v for k, v in f.items() if v is not None} for i, f in sup.list_fields(emulator, tenant).items()}


def rows(report: AccountReport) -> dict[str, Row]:
    return {r.check: r for r in report.rows}


def statuses(report: AccountReport) -> dict[str, str]:
    return {r.check: r.status for r in report.rows}


def test_healthy_accounts_pass_every_check_and_print_no_secret(
        tmp_path: Path, tenant_info: dict[str, Any], emulator: EmulatorServer, ctl: Any) -> None:
    config, state = faults.healthy().write(tmp_path, tenant_info, emulator.tls.ca_cert)
    before = values(emulator, "contoso")
    proc = sup.run_cli(["doctor", "--config", str(config), "--state-dir", str(state), "--json"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["exit_code"] == 0
    assert [a["account"] for a in doc["accounts"]] == ["contoso", "fabrikam"]
    for acc in doc["accounts"]:
        assert [c["check"] for c in acc["checks"]] == ["reachable", "credential", "permissions", "domains",
                                                      "agent_list", "upn_column", "writeback", "presence", "shapes",
                                                      "budget"]
        assert {c["check"]: c["status"] for c in acc["checks"]} == {c["check"]: "ok" for c in acc["checks"]}
    contoso = {c["check"]: c["detail"] for c in doc["accounts"][0]["checks"]}
    assert f"{len(before)} item(s)" in contoso["upn_column"] and "6 calls per 30 s" in contoso["budget"]
    assert values(emulator, "contoso") == before  # the write probe left every value as it was
    # Only the token caches were added to the state directory.
    added = {p.relative_to(state).parts[0] for p in state.rglob("*")} - {"secret.key"}
    assert added <= {"tokens"}
    assert not sup.leaks(sup.known_secrets(tenant_info, emulator), [], [proc.stdout, proc.stderr])


def test_wrong_secret_fails_the_credential_row_with_the_fix(
        tmp_path: Path, tenant_info: dict[str, Any], emulator: EmulatorServer) -> None:
    setup = faults.wrong_secret()
    config, state = setup.write(tmp_path, tenant_info, emulator.tls.ca_cert)
    proc = sup.run_cli(["doctor", "--config", str(config), "--state-dir", str(state)], cwd=tmp_path)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    fail = next(i for i, ln in enumerate(lines) if ln.strip().startswith("FAIL"))
    assert "credential works" in lines[fail] and "AADSTS7000215" in lines[fail]
    assert "fix:" in lines[fail + 1] and setup.names in lines[fail + 1]
    assert sum(ln.strip().startswith("skipped") for ln in lines) == 8
    assert "not-the-secret-value" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("make", "row"), [
    (faults.expired_secret, "credential"),
    (faults.app_not_in_tenant, "credential"),
    (faults.unknown_tenant, "reachable"),
    (faults.consent_withdrawn, "credential"),
    (faults.device_without_login, "credential"),
])
def test_credential_faults_name_their_fix(make: Any, row: str, tmp_path: Path, tenant_info: dict[str, Any],
                                          ca_file: Path) -> None:
    setup = make()
    [report] = doctor(setup, tmp_path, tenant_info, ca_file)
    got = rows(report)
    assert got[row].status == "fail" and setup.names in got[row].fix, got[row]
    before = list(got)[:list(got).index(row)]
    assert {got[k].status for k in before} <= {"ok"} and {r.status for r in report.rows[len(before) + 1:]} == {
        "skipped"}
    assert exit_code([report]) == 3


def test_missing_permissions_are_named_and_their_checks_skipped(
        tmp_path: Path, tenant_info: dict[str, Any], ca_file: Path) -> None:
    setup = faults.permissions_missing()
    [report] = doctor(setup, tmp_path, tenant_info, ca_file)
    got = rows(report)
    assert got["permissions"].status == "fail"
    assert setup.names in got["permissions"].fix and "admin consent" in got["permissions"].fix
    assert statuses(report) == {"reachable": "ok", "credential": "ok", "permissions": "fail", "domains": "ok",
                                "agent_list": "skipped", "upn_column": "skipped", "writeback": "skipped",
                                "presence": "skipped", "shapes": "ok", "budget": "skipped"}
    assert "Presence.Read.All" in got["presence"].detail
    assert "Agent list: Graph's list route (/sites/.../lists) (not probed: needs Sites.Read.All" in got[
        "shapes"].detail, got["shapes"]


def test_missing_writeback_column_is_named_with_how_to_create_it(
        tmp_path: Path, tenant_info: dict[str, Any], emulator: EmulatorServer, ca_file: Path, ctl: Any) -> None:
    setup = faults.writeback_column_removed("Availability")
    before = values(emulator, "contoso")
    [report] = doctor(setup, tmp_path, tenant_info, ca_file)
    got = rows(report)
    assert got["writeback"].status == "fail", got["writeback"]
    assert setup.names in got["writeback"].detail
    assert f"create '{setup.names}'" in got["writeback"].fix and "Single line of text" in got["writeback"].fix
    assert "WriteBack/@Availability" in got["writeback"].fix
    for name in ("Activity", "PresenceUpdated", "UpnStatus"):  # the columns that exist are not named
        assert name not in got["writeback"].detail
    assert [k for k, v in statuses(report).items() if v != "ok"] == ["writeback"]
    assert values(emulator, "contoso") == before


def test_missing_upn_column_is_named(tmp_path: Path, tenant_info: dict[str, Any], ca_file: Path) -> None:
    setup = faults.upn_column_removed()
    [report] = doctor(setup, tmp_path, tenant_info, ca_file)
    got = rows(report)
    assert got["upn_column"].status == "fail"
    assert repr(setup.names) in got["upn_column"].detail
    said = f"{got['upn_column'].detail} {got['upn_column'].fix}"
    assert "UPN" in said.replace(setup.names, "")  # the columns the list does have are listed
    assert "AgentList/@UpnColumn" in got["upn_column"].fix


def test_untrusted_ca_names_the_ca_bundle_option(tmp_path: Path, tenant_info: dict[str, Any], ca_file: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    setup = faults.untrusted_ca()
    [report] = doctor(setup, tmp_path, tenant_info, ca_file)
    got = rows(report)
    assert got["reachable"].status == "fail" and "TLS" in got["reachable"].detail
    assert setup.names in got["reachable"].fix and "REQUESTS_CA_BUNDLE" in got["reachable"].fix
    assert {r.status for r in report.rows[1:]} == {"skipped"}


def test_bad_configuration_exits_2_without_a_traceback(
        tmp_path: Path, tenant_info: dict[str, Any], ca_file: Path) -> None:
    config, state = faults.healthy().write(tmp_path, tenant_info, ca_file)
    proc = sup.run_cli(["doctor", "--config", str(config), "--state-dir", str(state), "--account", "nope"],
                       cwd=tmp_path)
    assert proc.returncode == 2 and "no Account with Id 'nope'" in proc.stderr and "Traceback" not in proc.stderr
    broken = tmp_path / "broken.xml"
    broken.write_text(config.read_text(encoding="utf-8").replace('ClientId="', 'ClientId="x'), encoding="utf-8")
    proc = sup.run_cli(["doctor", "--config", str(broken), "--state-dir", str(state)], cwd=tmp_path)
    assert proc.returncode == 2 and "ClientId" in proc.stderr and "Traceback" not in proc.stderr


def test_runs_beside_a_job_holding_the_state_lock(tmp_path: Path, tenant_info: dict[str, Any], ca_file: Path) -> None:
    setup = faults.Setup([faults.contoso_app()])
    config, state = setup.write(tmp_path, tenant_info, ca_file)
    with state_lock(state):
        proc = sup.run_cli(["doctor", "--config", str(config), "--state-dir", str(state), "--account", "contoso"],
                           cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all checks passed" in proc.stdout


def test_device_account_after_login_then_with_its_login_revoked(
        tmp_path: Path, tenant_info: dict[str, Any], ca_file: Path, ctl: Any, limits: Any) -> None:
    limits({"device_code_interval": 1})
    setup = faults.device_without_login()
    config, state = setup.write(tmp_path, tenant_info, ca_file)
    settings, _ = load_settings(config, {"state_dir": state}, env={}, dotenv_path=tmp_path / "no.env")
    shown: list[str] = []
    login = threading.Thread(target=login_account, args=(settings, "contoso-dc", shown.append), daemon=True)
    login.start()
    deadline = time.monotonic() + 30
    while not shown and time.monotonic() < deadline:
        time.sleep(0.05)
    code = re.search(r"enter the code (?P<code>[A-Z0-9-]+)", " ".join(shown))
    assert code, shown
    assert ctl.post("/_emulator/devicecode/approve",
                    json={"user_code": code["code"], "upn": sup.CONTOSO_SVC[0]}).status_code == 200
    login.join(30)
    assert not login.is_alive()

    [report] = run_doctor(settings)
    assert {r.status for r in report.rows} == {"ok"}, report.rows

    assert ctl.post("/_emulator/tokens/revoke", json={"client_id": sup.CONTOSO_PUBLIC_APP}).status_code == 200
    [report] = run_doctor(settings)
    got = rows(report)
    assert got["credential"].status == "fail", got["credential"]
    assert setup.names in got["credential"].fix


def test_consent_withdrawn_from_the_app_names_every_permission_and_the_consent_url(
        tmp_path: Path, tenant_info: dict[str, Any], ca_file: Path, ctl: Any) -> None:
    with faults.app_consent_withdrawn(ctl) as setup:
        [report] = doctor(setup, tmp_path, tenant_info, ca_file)
    got = rows(report)
    assert got["credential"].status == "ok"  # client credentials still get a token; Graph refuses it
    assert got["permissions"].status == "fail" and setup.names in got["permissions"].fix
    assert "Presence.Read.All, User.Read.All, Domain.Read.All, Sites.ReadWrite.All" in got["permissions"].fix
    assert {got[k].status for k in ("domains", "agent_list", "upn_column", "writeback", "presence", "shapes",
                                    "budget")} == {"skipped"}


def test_an_app_that_may_not_write_is_caught_by_the_write_probe(
        tmp_path: Path, tenant_info: dict[str, Any], emulator: EmulatorServer, ca_file: Path, ctl: Any) -> None:
    before = values(emulator, "contoso")
    with faults.app_without_write(ctl) as setup:
        [report] = doctor(setup, tmp_path, tenant_info, ca_file)
    got = rows(report)
    assert [k for k, v in statuses(report).items() if v != "ok"] == ["writeback"]
    assert got["writeback"].status == "fail" and "HTTP 403" in got["writeback"].detail
    assert setup.names in got["writeback"].fix
    assert values(emulator, "contoso") == before


def test_a_removed_writeback_column_is_named(tmp_path: Path, tenant_info: dict[str, Any], emulator: EmulatorServer,
                                            ca_file: Path, ctl: Any) -> None:
    with faults.column_removed(ctl, emulator, "Availability") as setup:
        [report] = doctor(setup, tmp_path, tenant_info, ca_file)
    got = rows(report)
    assert got["writeback"].status == "fail"
    assert f"missing column(s) '{setup.names}'" in got["writeback"].detail
    assert f"create '{setup.names}'" in got["writeback"].fix and "WriteBack/@Availability" in got["writeback"].fix
    assert [k for k, v in statuses(report).items() if v != "ok"] == ["writeback"]


def test_a_wrong_password_fails_even_with_a_cached_login(tmp_path: Path, tenant_info: dict[str, Any],
                                                          ca_file: Path) -> None:
    """A good run leaves a refresh token in the cache; the password changed in the config is still what is checked."""
    [report] = doctor(faults.Setup([faults.fabrikam_password()]), tmp_path, tenant_info, ca_file)
    assert {r.status for r in report.rows} == {"ok"}, report.rows
    wrong = faults.Setup([sup.Account("fabrikam", "fabrikam", sup.FABRIKAM_PUBLIC_APP, username=sup.FABRIKAM_SVC[0],
                                      password="not-the-password")])
    [report] = doctor(wrong, tmp_path, tenant_info, ca_file)
    got = rows(report)
    assert got["credential"].status == "fail" and "AADSTS50126" in got["credential"].detail, got["credential"]
    assert "EncryptedPassword" in got["credential"].detail + got["credential"].fix, got["credential"]
    assert "not-the-password" not in repr(report.rows)
