"""The large-tenant generator: deterministic, loadable, varied, and quick."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sync.emulator.model.fixtures import tenant_from_json
from sync.emulator.model.generate import generate_tenant
from sync.emulator.model.presence import PresenceModel

ROOT = Path(__file__).resolve().parents[3]


def test_small_generation_is_deterministic_and_loads() -> None:
    a = generate_tenant(2000, 600, seed=3, name="smallcorp")
    assert a == generate_tenant(2000, 600, seed=3, name="smallcorp")
    b = generate_tenant(2000, 600, seed=4, name="smallcorp")
    assert a["tenantId"] != b["tenantId"] and a["users"] != b["users"]
    tenant = tenant_from_json(json.loads(json.dumps(a)))
    assert len(tenant.users) == 2001  # plus the service account
    assert len(tenant._by_upn) == len(tenant.users)  # UPNs unique
    agents = tenant.site.list_by_title("Agents")
    assert agents is not None and len(agents.items) == 600
    assert tenant.service_account("svc-presence@smallcorp.com") is not None
    app = next(x for x in tenant.apps if x.kind == "confidential")
    assert app.client_secret and "Presence.Read.All" in app.application_permissions
    assert [d.id for d in tenant.domains if not d.is_verified] == ["smallcorp-sales.com"]
    assert tenant.site.path == "/sites/smallcorp-agents"


def test_variety_and_defect_share() -> None:
    doc = generate_tenant(20000, 6000, seed=1)
    users = doc["users"]
    kinds = Counter(u["userType"] for u in users)
    assert kinds["Guest"] >= 100 and all("#EXT#@bigcorp.onmicrosoft.com" in u["userPrincipalName"]
                                         for u in users if u["userType"] == "Guest")
    assert sum(not u["accountEnabled"] for u in users) >= 200
    assert sum(not u["teamsLicensed"] for u in users) >= 400
    assert sum(u["mail"] != u["userPrincipalName"] for u in users) >= 500
    assert sum(bool(u["imAddresses"]) and u["imAddresses"][0] != u["userPrincipalName"] for u in users) >= 300
    assert sum(not u["displayName"].isascii() for u in users) >= 1000
    assert len({u["utcOffsetMinutes"] for u in users}) >= 6
    domains = Counter(u["userPrincipalName"].rsplit("@", 1)[1] for u in users)
    assert domains["bigcorp.co.uk"] > 1000 and domains["bigcorp.onmicrosoft.com"] > 50
    upns = {u["userPrincipalName"] for u in users}
    cells = [it["fields"]["UPN"] for it in doc["site"]["lists"][0]["items"]]
    odd = [c for c in cells if c not in upns]
    share = len(odd) / len(cells)
    assert 0.015 <= share <= 0.05, share
    assert None in cells or "" in cells
    assert any(isinstance(c, str) and c != c.strip() for c in cells)
    assert any(isinstance(c, str) and c.lower().startswith(("sip:", "mailto:")) for c in cells)


def test_generated_users_have_presence() -> None:
    doc = generate_tenant(500, 100, seed=2)
    tenant = tenant_from_json(doc)
    model = PresenceModel(1)
    at = datetime(2026, 3, 10, 15, tzinfo=UTC)
    seen = Counter(model.presence(tenant, u, at)["availability"] for u in tenant.users.values())
    assert seen["PresenceUnknown"] >= 1 and len(seen) >= 4


def test_cli_builds_the_benchmark_tenant(tmp_path: Path) -> None:
    out = tmp_path / "bigcorp.json"
    t0 = time.perf_counter()
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_tenant.py"), "--users", "100000",
                          "--agents", "30000", "--seed", "7", "--name", "bigcorp", "--out", str(out)],
                         capture_output=True, text=True, timeout=60, check=True)
    took = time.perf_counter() - t0
    print(f"\n{run.stdout.strip()} (subprocess {took:.2f} s)")
    assert "100001 users" in run.stdout and "30000 agents" in run.stdout
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert len(doc["users"]) == 100001 and len(doc["site"]["lists"][0]["items"]) == 30000
    assert doc == generate_tenant(100000, 30000, 7, "bigcorp")
