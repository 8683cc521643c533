"""Whatever a person types into the Agent list's UPN cell, the job keeps running and no output carries it raw.

The cells go in through the local tenant's control API, so they reach the job through both roster routes:
Graph's list route (contoso, application permissions) and SharePoint REST (fabrikam, delegated).
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import e2e_support as sup
import httpx
import pytest

from sync.emulator.server import EmulatorServer

HUGE = "a" * 200_000 + "@contoso.com"
CELLS: dict[str, Any] = {
    "nul": "ali\x00khan@contoso.com",
    "escape": "\x1b[31mred@contoso.com",
    "bell-and-del": "x\x07y\x7f@contoso.com",
    "huge": HUGE,
    "number": 12345,
    "superscript-digit": "²@contoso.com",
    "list": ["a@contoso.com", "b@contoso.com"],
}
EXPECTED_CODE = {"nul": "CONTROL_CHAR", "escape": "CONTROL_CHAR", "bell-and-del": "CONTROL_CHAR", "huge": "TOO_LONG"}
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


@pytest.fixture()
def odd_items(ctl: httpx.Client) -> Iterator[dict[str, dict[str, int]]]:
    """The cells above added to both fixture Agent lists; removed again afterwards."""
    added: dict[str, dict[str, int]] = {}
    for tenant in ("contoso", "fabrikam"):
        r = ctl.post("/_emulator/lists/items", json={"tenant": tenant, "add": [{"UPN": v} for v in CELLS.values()]})
        assert r.status_code == 200, r.text
        added[tenant] = dict(zip(CELLS, r.json()["added"], strict=True))
    yield added
    for tenant, ids in added.items():
        ctl.post("/_emulator/lists/items", json={"tenant": tenant, "delete": list(ids.values())})


def test_odd_cells_become_findings_and_no_output_carries_them_raw(tmp_path: Path, emulator: EmulatorServer,
                                                                  tenant_info: dict[str, Any], ctl: httpx.Client,
                                                                  odd_items: dict[str, dict[str, int]]) -> None:
    config, state, out = sup.both_tenants(tmp_path, tenant_info, emulator)
    ran = sup.run_cli(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out), "--once"],
                      cwd=tmp_path, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert "Traceback" not in ran.stderr
    limit = csv.field_size_limit(1 << 24)  # the 200,000-character cell; put back for the other tests
    try:
        with (out / "validation.csv").open(newline="", encoding="utf-8") as fh:
            rows = {(r["account_id"], int(r["agent_item_id"])): r for r in csv.DictReader(fh)}
    finally:
        csv.field_size_limit(limit)
    for tenant, ids in odd_items.items():
        for name, item_id in ids.items():
            row = rows[(tenant, item_id)]
            assert row["status"] == "invalid", (tenant, name, row["status"], row["codes"])
            want = EXPECTED_CODE.get(name)
            assert want is None or row["codes"] == want, (tenant, name, row["codes"])
    for f in out.rglob("*.csv"):
        text = f.read_text(encoding="utf-8")
        assert not CONTROL.search(text), f"{f.name} carries a raw control character"
    # The write-back wrote each odd item's status, not the cell.
    for tenant, ids in odd_items.items():
        fields = sup.list_fields(emulator, tenant)
        for item_id in ids.values():
            assert str(fields[item_id].get("UpnStatus", "")).startswith("invalid"), fields[item_id]
