"""One account's SharePoint throttled for a minute: the other account's presence keeps its schedule, and no
SharePoint request of the throttled account comes back before its Retry-After.

contoso reads its Agent list through Graph with application permissions; fabrikam through SharePoint REST
(office365) with delegated permissions. Only fabrikam's site answers 429, again and again, for about a minute.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import e2e_support as sup
import httpx

from sync.emulator.server import EmulatorServer

THROTTLED_FOR = 60.0  # seconds of 429s on fabrikam's site
RETRY_AFTER = 2.0


def _gaps(ctl: httpx.Client, tenant: str) -> dict[str, Any]:
    r = ctl.get("/_emulator/presence-reads", params={"tenant": tenant})
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_one_accounts_throttled_sharepoint_never_delays_the_other(tmp_path: Path, emulator: EmulatorServer,
                                                                  tenant_info: dict[str, Any],
                                                                  ctl: httpx.Client) -> None:
    config, state, out = sup.both_tenants(tmp_path, tenant_info, emulator)
    text = config.read_text(encoding="utf-8").replace("<Accounts>", '<WriteBack Interval="2"/>\n    <Accounts>')
    config.write_text(text, encoding="utf-8")
    fabrikam = next(t for t in tenant_info["tenants"] if t["name"] == "fabrikam")
    site_path = urlsplit(fabrikam["site_url"]).path
    run = sup.Running(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out),
                       "--interval", "1"], cwd=tmp_path)
    try:
        assert run.wait_for(lambda _: all(len(run.cycle_lines(a)) >= 2 for a in ("contoso", "fabrikam")), 90), \
            run.text
        ctl.post("/_emulator/presence-reads/reset")
        ctl.post("/_emulator/stats/reset")
        # Every SharePoint request of fabrikam's site (REST, and Graph calls addressing it) is answered 429 with
        # Retry-After RETRY_AFTER for THROTTLED_FOR seconds.
        r = ctl.post("/_emulator/faults", json={"replace": True, "throttle_for": THROTTLED_FOR,
                                                "throttle_retry_after": RETRY_AFTER, "paths": [site_path]})
        assert r.status_code == 200, r.text
        time.sleep(THROTTLED_FOR)
        ctl.post("/_emulator/faults", json={"reset": True})
        stats = ctl.get("/_emulator/stats").json()
        contoso, fab = _gaps(ctl, "contoso"), _gaps(ctl, "fabrikam")
    finally:
        rc = run.terminate(signal.SIGTERM)
    assert rc == 0, run.text
    assert stats["throttled"] >= 10, stats  # fabrikam's site really was throttled
    assert stats["retry_after_violations"] == 0, stats
    # Presence of both accounts kept its 1 s schedule through the minute (a late tick would show as a 2 s+ gap).
    for name, reads in (("contoso", contoso), ("fabrikam", fab)):
        assert reads["reads"] > 0, (name, reads)
        assert reads["gap_max"] < 2.0, (name, reads)
    assert "Traceback" not in run.text
