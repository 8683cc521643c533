"""Ten generated tenants in one emulator (a multi-tenant load), and the CLI flags of the newer switches."""

from __future__ import annotations

import json
import ssl
from pathlib import Path

import httpx

from sync.emulator.cli import _faults, _limits, build_parser
from sync.emulator.model.fixtures import load_world
from sync.emulator.model.generate import generate_tenant
from sync.emulator.server import EmulatorServer


def test_ten_generated_tenants_are_distinct_and_served_together(tmp_path: Path) -> None:
    fixtures = tmp_path / "fixtures"
    fixtures.mkdir()
    for i in range(1, 11):
        name = f"t{i:02d}"
        (fixtures / f"{name}.json").write_text(json.dumps(generate_tenant(300, 100, seed=7, name=name)))
    world = load_world(fixtures, presence_seed=1)
    tenants = list(world.tenants.values())
    assert len(tenants) == 10
    assert len({t.tenant_id for t in tenants}) == 10
    assert len({a.client_id for t in tenants for a in t.apps}) == sum(len(t.apps) for t in tenants)
    assert len({t.site.path for t in tenants}) == 10 and len({t.site.hostname for t in tenants}) == 10
    all_users = [uid for t in tenants for uid in t.users]
    assert len(set(all_users)) == len(all_users)
    with EmulatorServer(state_dir=tmp_path / "state", world=world) as srv:
        ctx = ssl.create_default_context(cafile=str(srv.tls.ca_cert))
        info = httpx.get(f"{srv.base_url}/_emulator/info", verify=ctx).json()
        assert sorted(t["name"] for t in info["tenants"]) == [f"t{i:02d}" for i in range(1, 11)]
        assert len({t["site_url"] for t in info["tenants"]}) == 10


def test_cli_flags_of_quota_delta_and_batch_faults() -> None:
    args = build_parser().parse_args([
        "--sharepoint-ru-per-minute", "2500", "--delta-page-max", "150", "--batch-item-429-rate", "0.1",
        "--batch-item-retry-after", "0.3", "--latency", "presence=150:400,other=80"])
    limits = _limits(args)
    assert limits.sharepoint_ru_per_minute == 2500 and limits.delta_page_max == 150
    faults = _faults(args)
    assert faults.batch_item_429_rate == 0.1 and faults.batch_item_retry_after == 0.3
    model = faults.to_json()["latency_model"]
    assert model["presence"]["dist"] == "lognormal" and model["other"] == {"dist": "fixed", "ms": 80.0}
