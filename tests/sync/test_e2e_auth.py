"""Authentication end to end: device-code login approved through the control API and reused by a second process,
the seed's "needs authentication" line, and AADSTS errors turned into what the operator should do."""

from __future__ import annotations

import re
import stat
from pathlib import Path
from typing import Any

import e2e_support as sup
import httpx

from sync.emulator.server import EmulatorServer

NEEDS_LOGIN = re.compile(
    r"Graph API needs authentication for account with ID '(?P<id>[^']+)' \(tenant: (?P<tenant>[^)]+)\)\. "
    r"Please login on (?P<uri>\S+) with code (?P<code>[A-Z0-9-]+)")
CODE_IN_MESSAGE = re.compile(r"enter the code (?P<code>[A-Z0-9-]+)")


def pending_codes(ctl: httpx.Client) -> set[str]:
    return {c["user_code"] for c in ctl.get("/_emulator/devicecode").json()["value"]}


def test_device_code_login_then_a_second_process_needs_no_login(tmp_path: Path, emulator: EmulatorServer,
                                                                 tenant_info: dict[str, Any],
                                                                 ctl: httpx.Client) -> None:
    config, state, out = sup.device_and_password(tmp_path, tenant_info, emulator)
    base = ["--config", str(config), "--state-dir", str(state)]

    # 1. No login yet: the seed's line for the device-code account, the other account still collects, exit 3.
    first = sup.run_cli(["run", *base, "--out", str(out), "--once"], cwd=tmp_path)
    assert first.returncode == 3, first.stderr
    m = NEEDS_LOGIN.search(first.stderr)
    assert m, first.stderr
    assert m["id"] == "contoso-dc" and m["tenant"] == sup.CONTOSO_TENANT
    assert m["uri"].startswith(tenant_info["base_url"]) and "/devicelogin" in m["uri"]
    assert len(NEEDS_LOGIN.findall(first.stderr)) == 1  # once per account
    rows = sup.assert_leading_columns(out / "presence.csv", sup.PRESENCE_COLUMNS)
    assert {r["account_id"] for r in rows} == {"fabrikam"}
    assert not (state / "tokens" / "contoso-dc.cache").exists() or not any(
        r["account_id"] == "contoso-dc" for r in rows)

    # 2. `login` prints a code; an operator approves it (control API); the login completes.
    login = sup.Running(["login", "--account", "contoso-dc", *base], cwd=tmp_path)
    try:
        assert login.wait_for(lambda lines: bool(CODE_IN_MESSAGE.search(" ".join(lines))), 30), login.text
        found = CODE_IN_MESSAGE.search(login.flat)
        assert found, login.text
        code = found["code"]
        assert code in pending_codes(ctl)
        approved = ctl.post("/_emulator/devicecode/approve", json={"user_code": code, "upn": sup.CONTOSO_SVC[0]})
        assert approved.status_code == 200, approved.text
    finally:
        rc = login.finish(timeout=30)
    assert rc == 0, login.text
    assert "signed in with device login" in login.flat

    cache = state / "tokens" / "contoso-dc.cache"
    assert cache.is_file()
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    data = cache.read_bytes()
    user_tokens = [t for t, i in emulator.state.tokens._access.items()
                   if i.client_id == sup.CONTOSO_PUBLIC_APP and i.user_upn == sup.CONTOSO_SVC[0]]
    assert user_tokens, "the tenant issued no token for the login"
    assert not any(t.encode() in data for t in user_tokens)
    assert b"AccessToken" not in data and b"RefreshToken" not in data  # encrypted, not MSAL's JSON

    # 3. A second process collects presence silently: no device code, no sign-in page.
    flows = len(emulator.state.device_codes)
    ctl.post("/_emulator/stats/reset")
    second = sup.run_cli(["run", *base, "--out", str(out), "--once", "--account", "contoso-dc"], cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert not NEEDS_LOGIN.search(second.stderr)
    stats = ctl.get("/_emulator/stats").json()["requests"]
    assert stats.get("identity.devicecode", 0) == 0 and stats.get("identity.devicelogin", 0) == 0, stats
    assert len(emulator.state.device_codes) == flows
    assert stats.get("graph.presence.bulk", 0) >= 1
    rows = sup.assert_leading_columns(out / "presence.csv", sup.PRESENCE_COLUMNS)
    dc_rows = [r for r in rows if r["account_id"] == "contoso-dc"]
    validation = sup.assert_leading_columns(out / "validation.csv", sup.VALIDATION_COLUMNS)
    collectable = sum(1 for r in validation if r["account_id"] == "contoso-dc" and r["status"] != "invalid")
    assert collectable > 0 and len(dc_rows) == collectable


def test_username_password_account_collects(tmp_path: Path, emulator: EmulatorServer, tenant_info: dict[str, Any],
                                            ctl: httpx.Client) -> None:
    """Delegated with Username + EncryptedPassword (ROPC), contoso's service account, on its own."""
    state, out = tmp_path / "state", tmp_path / "out"
    config = sup.write_config(tmp_path / "config.xml", [
        sup.Account("contoso-ropc", "contoso", sup.CONTOSO_PUBLIC_APP, username=sup.CONTOSO_SVC[0],
                    password=sup.CONTOSO_SVC[1])], tenant_info, emulator.tls.ca_cert, state)
    sup.ARTIFACTS.add_dir(state, out)
    proc = sup.run_cli(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out), "--once"],
                       cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = sup.assert_leading_columns(out / "presence.csv", sup.PRESENCE_COLUMNS)
    assert len(rows) > 50 and {r["account_id"] for r in rows} == {"contoso-ropc"}
    # The token cache makes the next start silent too (no password grant needed while the token lives).
    assert (state / "tokens" / "contoso-ropc.cache").is_file()


def test_aadsts_errors_become_actionable_messages(tmp_path: Path, emulator: EmulatorServer,
                                                  tenant_info: dict[str, Any], ctl: httpx.Client) -> None:
    """Four accounts that need a human and one that works, in one run: exit 3, the good one still collects."""
    state, out = tmp_path / "state", tmp_path / "out"
    config = sup.write_config(tmp_path / "config.xml", [
        sup.Account("expired", "contoso", sup.CONTOSO_EXPIRED_APP, secret=sup.CONTOSO_EXPIRED_SECRET),
        sup.Account("secret-id", "contoso", sup.CONTOSO_APP, secret=sup.CONTOSO_APP_SECRET_ID),
        sup.Account("no-consent", "contoso", sup.CONTOSO_UNCONSENTED_APP, username=sup.CONTOSO_SVC[0],
                    password=sup.CONTOSO_SVC[1]),
        sup.Account("mfa", "contoso", sup.CONTOSO_PUBLIC_APP, username=sup.CONTOSO_MFA[0],
                    password=sup.CONTOSO_MFA[1]),
        sup.Account("fabrikam", "fabrikam", sup.FABRIKAM_PUBLIC_APP, username=sup.FABRIKAM_SVC[0],
                    password=sup.FABRIKAM_SVC[1]),
    ], tenant_info, emulator.tls.ca_cert, state)
    sup.ARTIFACTS.add_dir(state, out)
    proc = sup.run_cli(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out), "--once"],
                       cwd=tmp_path)
    assert proc.returncode == 3, proc.stderr
    log = proc.stderr
    assert "Traceback" not in log
    expected = {
        "expired": ("AADSTS7000222", re.compile(r"expired.*create a new secret", re.I)),
        "secret-id": ("AADSTS7000215", re.compile(r"Value, not its Secret ID", re.I)),
        "no-consent": ("AADSTS65001", re.compile(r"grant admin consent", re.I)),
        "mfa": ("AADSTS50076", re.compile(r"exclude it from MFA", re.I)),
    }
    problems = []
    for acc, (code, hint) in expected.items():
        lines = [ln for ln in log.splitlines() if f"account '{acc}'" in ln]
        if not any(code in ln and hint.search(ln) for ln in lines):
            problems.append(f"{acc}: expected {code} and /{hint.pattern}/ in {lines or 'no line'}")
        if len([ln for ln in lines if code in ln]) != 1:
            problems.append(f"{acc}: the message should appear exactly once, got {len(lines)}")
    assert not problems, "\n".join(problems) + "\n---\n" + log[-3000:]
    rows = sup.assert_leading_columns(out / "presence.csv", sup.PRESENCE_COLUMNS)
    assert {r["account_id"] for r in rows} == {"fabrikam"}
    assert len(rows) > 10
    assert sup.CONTOSO_APP_SECRET_ID not in log  # the wrong value is not echoed either
