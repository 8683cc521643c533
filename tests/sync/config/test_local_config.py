"""config/local-tenant.xml, the shipped config for a standalone local tenant, works as documented in it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import e2e_support as sup
import httpx

from sync.emulator.server import EmulatorServer

ROOT = Path(__file__).resolve().parents[3]


def test_shipped_local_tenant_config_runs(tmp_path: Path, emulator: EmulatorServer, tenant_info: dict[str, Any],
                                          frozen_clock: httpx.Client) -> None:
    text = (ROOT / "config" / "local-tenant.xml").read_text(encoding="utf-8")
    assert "Encrypted" not in text.split("-->", 1)[1]  # no secret in the shipped file
    config = tmp_path / "local-tenant.xml"
    config.write_text(text.replace("https://127.0.0.1:8443", emulator.base_url), encoding="utf-8")
    state, out = tmp_path / "state", tmp_path / "out"
    sup.ARTIFACTS.add_dir(state, out)
    env = {"PRESENCE_SYNC_SECRET__CONTOSO": sup.CONTOSO_APP_SECRET,
           "PRESENCE_SYNC_PASSWORD__FABRIKAM": sup.FABRIKAM_SVC[1]}
    done = sup.run_cli(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out), "--once",
                        "--dry-run", "--ca-bundle", str(emulator.tls.ca_cert)], cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    rows = sup.assert_leading_columns(out / "presence.csv", sup.PRESENCE_COLUMNS)
    assert {r["account_id"] for r in rows} == {"contoso", "fabrikam"}
