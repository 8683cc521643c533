"""<Reports>: each account's validation.csv and report.html land in a document library of its Agent list's site.

contoso uploads through Graph's drive (application permissions), fabrikam through SharePoint REST (delegated).
The files are read back from the library over Graph (contoso) and from the tenant's library (fabrikam), and hold
the account's own rows only.
"""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path
from typing import Any

import e2e_support as sup
import httpx

from sync.emulator.server import EmulatorServer


def _with_reports(config: Path, folder: str) -> None:
    text = config.read_text(encoding="utf-8").replace(
        "</AgentList>", "").replace("/>\n      </Account>",
                                    f'/>\n        <Reports Library="Shared Documents" Folder="{folder}"/>\n'
                                    "      </Account>")
    config.write_text(text, encoding="utf-8")


def _graph_token(ctl: httpx.Client, tenant_info: dict[str, Any]) -> str:
    contoso = next(t for t in tenant_info["tenants"] if t["name"] == "contoso")
    r = ctl.post(f"/{contoso['tenant_id']}/oauth2/v2.0/token", data={
        "client_id": sup.CONTOSO_APP, "client_secret": sup.CONTOSO_APP_SECRET, "grant_type": "client_credentials",
        "scope": "https://graph.microsoft.com/.default"})
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


def test_each_accounts_findings_are_uploaded_to_its_library(tmp_path: Path, emulator: EmulatorServer,
                                                            tenant_info: dict[str, Any], ctl: httpx.Client) -> None:
    folder = f"presence-sync-{uuid.uuid4().hex[:8]}"
    config, state, out = sup.both_tenants(tmp_path, tenant_info, emulator)
    _with_reports(config, folder)
    assert config.read_text(encoding="utf-8").count("<Reports ") == 2
    ran = sup.run_cli(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out), "--once"],
                      cwd=tmp_path, timeout=180)
    assert ran.returncode == 0, ran.stderr
    assert "report file(s) uploaded" in ran.stderr

    local = {r["agent_item_id"]: r for r in sup.read_csv(out / "validation.csv")[1]
             if r["account_id"] == "contoso"}
    # contoso: read back over Graph, as a supervisor's browser or script would.
    token = _graph_token(ctl, tenant_info)
    site = emulator.state.world.resolve_tenant("contoso").site
    auth = {"Authorization": f"Bearer {token}"}
    got = ctl.get(f"/v1.0/sites/{site.id}/drive/root:/{folder}/validation.csv:/content", headers=auth,
                  follow_redirects=True)
    assert got.status_code == 200, got.text
    rows = list(csv.DictReader(io.StringIO(got.content.decode("utf-8"))))
    assert {r["account_id"] for r in rows} == {"contoso"}  # never another tenant's agents
    assert {r["agent_item_id"]: r for r in rows} == local
    html = ctl.get(f"/v1.0/sites/{site.id}/drive/root:/{folder}/report.html:/content", headers=auth,
                   follow_redirects=True)
    assert html.status_code == 200 and b"<html" in html.content[:500].lower()
    page = html.content.decode("utf-8")
    assert 'data-account="contoso"' in page and 'data-account="fabrikam"' not in page  # this account's report

    # fabrikam: what SharePoint REST stored in its library.
    lib = emulator.state.world.resolve_tenant("fabrikam").site.library
    fab_csv = lib.file(f"{folder}/validation.csv")
    fab_html = lib.file(f"{folder}/report.html")
    assert fab_csv is not None and fab_html is not None
    fab_rows = list(csv.DictReader(io.StringIO(fab_csv.content.decode("utf-8"))))
    assert fab_rows and {r["account_id"] for r in fab_rows} == {"fabrikam"}
    fab_page = fab_html.content.decode("utf-8")
    assert 'data-account="fabrikam"' in fab_page and 'data-account="contoso"' not in fab_page

    # A second run uploads each file once at most (a new process does not know what the library holds, so it sends
    # its first copy; within a run, unchanged files are never sent again).
    version = fab_csv.version
    again = sup.run_cli(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out), "--once"],
                        cwd=tmp_path, timeout=180)
    assert again.returncode == 0, again.stderr
    refreshed = lib.file(f"{folder}/validation.csv")
    assert refreshed is not None and refreshed.version <= version + 1


def test_csv_encoding_utf8_sig_reaches_every_csv_the_job_writes(tmp_path: Path, emulator: EmulatorServer,
                                                                  tenant_info: dict[str, Any]) -> None:
    """CsvEncoding="utf-8-sig": one BOM at the start of the local CSVs and of the uploaded validation.csv; a second
    run appends to the history (after its catch-up read the file back) without a BOM mid-file."""
    folder = f"presence-sync-{uuid.uuid4().hex[:8]}"
    config, state, out = sup.both_tenants(tmp_path, tenant_info, emulator)
    _with_reports(config, folder)
    config.write_text(config.read_text(encoding="utf-8").replace(
        "<MsGraphPresenceSource ", '<MsGraphPresenceSource CsvEncoding="utf-8-sig" ', 1), encoding="utf-8")
    for _ in range(2):
        ran = sup.run_cli(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out), "--once"],
                          cwd=tmp_path, timeout=180)
        assert ran.returncode == 0, ran.stderr
        assert "lacked" not in ran.stderr  # the catch-up found every row the first run wrote (BOM and all)
    bom = b"\xef\xbb\xbf"
    for name in ("presence.csv", "presence_history.csv", "validation.csv"):
        data = (out / name).read_bytes()
        assert data.startswith(bom + b"account_id,") and b"\n" + bom not in data, name
        assert data.count(b"account_id,") == 1, name  # one header: the second run appended rows only
    uploaded = emulator.state.world.resolve_tenant("fabrikam").site.library.file(f"{folder}/validation.csv")
    assert uploaded is not None and uploaded.content.startswith(bom + b"account_id,")
    rows = list(csv.DictReader(io.StringIO(uploaded.content.decode("utf-8-sig"))))
    assert rows and {r["account_id"] for r in rows} == {"fabrikam"}
