"""An interval run whose delegated login stops working (refresh token revoked) asks for a new device login, logs
the new code in the seed's words, keeps the other account running, and resumes once the operator approves."""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import e2e_support as sup
import httpx

from sync.emulator.server import EmulatorServer

NEEDS_LOGIN = re.compile(r"Graph API needs authentication for account with ID 'contoso-dc' \(tenant: [^)]+\)\. "
                         r"Please login on \S+ with code (?P<code>[A-Z0-9-]+)")


def cycles(run: sup.Running, account: str) -> int:
    return len(run.cycle_lines(account))


def test_lost_login_asks_again_and_resumes(tmp_path: Path, emulator: EmulatorServer, tenant_info: dict[str, Any],
                                           ctl: httpx.Client) -> None:
    config, state, out = sup.device_and_password(tmp_path, tenant_info, emulator)
    run = sup.Running(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out),
                       "--interval", "0.5"], cwd=tmp_path)
    try:
        def next_code(seen: int) -> str:
            assert run.wait_for(lambda lines: len(NEEDS_LOGIN.findall("\n".join(lines))) > seen, 30), run.text
            return NEEDS_LOGIN.findall(run.text)[seen]

        def approve(code: str) -> None:
            r = ctl.post("/_emulator/devicecode/approve", json={"user_code": code, "upn": sup.CONTOSO_SVC[0]})
            assert r.status_code == 200, r.text

        first_code = next_code(0)
        approve(first_code)
        assert run.wait_for(lambda _: cycles(run, "contoso-dc") >= 1, 30), run.text

        # The login dies: every token of the public app is revoked, refresh tokens included.
        ctl.post("/_emulator/tokens/revoke", json={"client_id": sup.CONTOSO_PUBLIC_APP})
        second_code = next_code(1)
        assert second_code != first_code
        # While contoso-dc waits for its operator, fabrikam keeps its own schedule.
        waiting, fabrikam = cycles(run, "contoso-dc"), cycles(run, "fabrikam")
        assert run.wait_for(lambda _: cycles(run, "fabrikam") >= fabrikam + 3, 30), run.text
        assert cycles(run, "contoso-dc") == waiting, run.text
        approve(second_code)
        assert run.wait_for(lambda _: cycles(run, "contoso-dc") > waiting, 30), run.text
    finally:
        rc = run.terminate(signal.SIGTERM)
    assert rc == 0, run.text
    assert "Traceback" not in run.text
