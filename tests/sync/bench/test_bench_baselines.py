"""The benchmark's baselines against the test session's local tenant, and the tenant in a child process."""

from __future__ import annotations

import asyncio
import math
import sys
from pathlib import Path

import httpx
import pytest

from sync.bench.baselines import BaselineResult, fetch_user_ids, run_bare_httpx, run_msgraph_sdk
from sync.bench.tenant import MODEL_LATENCY, SIMPLE_LATENCY, TenantError, TenantProcess, start_tenant
from sync.emulator.server import EmulatorServer


@pytest.fixture()
def tenant(emulator: EmulatorServer, ctl: httpx.Client) -> TenantProcess:
    """The session's tenant, attached (budgets, faults and counters reset around the test by ``ctl``)."""
    return TenantProcess.attach(emulator.base_url, emulator.tls.ca_cert)


@pytest.fixture()
def contoso_ids(tenant: TenantProcess) -> list[str]:
    return fetch_user_ids(tenant, "contoso")


def check(result: BaselineResult, ids: list[str], cycles: int) -> None:
    assert result.cycles == cycles
    assert result.calls_per_cycle == [math.ceil(len(ids) / 650)] * cycles
    assert result.throttled == [0] * cycles and result.errors == [0] * cycles
    assert result.presences_per_cycle == [len(ids)] * cycles
    assert all(c > 0 for c in result.cpu_per_cycle) and all(w > 0 for w in result.wall_per_cycle)
    fig = result.figures()
    assert fig["throttled"] == 0 and fig["presence_calls_per_cycle"] == math.ceil(len(ids) / 650)
    assert fig["cpu_per_cycle_median"] == result.cpu_median and fig["cycle_wall_p50"] == result.wall_median


def test_attached_tenant_knows_its_tenants(tenant: TenantProcess, contoso_ids: list[str],
                                           emulator: EmulatorServer) -> None:
    assert tenant.pid is None and tenant.cpu_seconds() is None
    assert tenant.confidential_app("contoso")["kind"] == "confidential"
    assert tenant.tenant(tenant.tenant("contoso")["tenant_id"])["name"] == "contoso"
    assert sorted(contoso_ids) == sorted(emulator.state.world.resolve_tenant("contoso").users)  # type: ignore[union-attr]
    with pytest.raises(KeyError):
        tenant.tenant("nowhere")
    with pytest.raises(KeyError):
        tenant.agent_ids("contoso")
    assert tenant.stop() is None


def test_bare_httpx_two_cycles(tenant: TenantProcess, contoso_ids: list[str]) -> None:
    result = asyncio.run(run_bare_httpx(tenant, "contoso", contoso_ids, seconds=0.0, interval=0.2))
    check(result, contoso_ids, 2)
    assert result.name == "bare_httpx" and result.sampled_chunks is None


def test_bare_httpx_counts_429s(tenant: TenantProcess, contoso_ids: list[str]) -> None:
    tenant.control("POST", "faults", {"burst_429": 1, "burst_retry_after": 0.1})
    result = asyncio.run(run_bare_httpx(tenant, "contoso", contoso_ids, seconds=0.0, interval=0.2, warmup=False))
    assert result.throttled == [1, 0] and result.throttled_total == 1 and result.errors == [0, 0]
    assert result.presences_per_cycle == [0, len(contoso_ids)]


def test_schedule_is_bounded(tenant: TenantProcess, contoso_ids: list[str]) -> None:
    result = asyncio.run(run_bare_httpx(tenant, "contoso", contoso_ids, seconds=0.5, interval=0.1, max_cycles=3))
    assert result.cycles == 3
    result = asyncio.run(run_bare_httpx(tenant, "contoso", contoso_ids, seconds=0.35, interval=0.1, min_cycles=1))
    assert 2 <= result.cycles <= 4


def test_msgraph_sdk_two_cycles(tenant: TenantProcess, contoso_ids: list[str]) -> None:
    result = asyncio.run(run_msgraph_sdk(tenant, "contoso", contoso_ids, seconds=0.0, interval=0.2))
    check(result, contoso_ids, 2)
    assert result.name == "msgraph_sdk"


def test_msgraph_sdk_retries_a_429_and_it_is_counted(tenant: TenantProcess, contoso_ids: list[str]) -> None:
    tenant.control("POST", "faults", {"burst_429": 1, "burst_retry_after": 0.1})
    result = asyncio.run(run_msgraph_sdk(tenant, "contoso", contoso_ids, seconds=0.0, interval=0.2,
                                         min_cycles=1, warmup=False))
    assert result.throttled == [1] and result.calls_per_cycle == [2] and result.errors == [0]
    assert result.presences_per_cycle == [len(contoso_ids)]


def test_msgraph_sdk_sampled_cycles_are_scaled_up(tenant: TenantProcess, contoso_ids: list[str]) -> None:
    unknown = [f"00000000-0000-4000-8000-{i:012x}" for i in range(1500)]  # answered as PresenceUnknown
    ids = [*contoso_ids, *unknown]
    result = asyncio.run(run_msgraph_sdk(tenant, "contoso", ids, seconds=0.0, interval=0.2, sample_chunks=1))
    chunks = math.ceil(len(ids) / 650)
    assert chunks > 1 and result.sampled_chunks == 1 and result.figures()["sampled_chunks"] == 1
    assert result.calls_per_cycle == [chunks, chunks]
    assert result.presences_per_cycle == [len(ids), len(ids)]


def test_missing_msgraph_sdk_says_how_to_install(tenant: TenantProcess, contoso_ids: list[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from sync.bench.baselines import MsgraphSdkMissing, msgraph_sdk_available

    assert msgraph_sdk_available()
    monkeypatch.setitem(sys.modules, "msgraph", None)
    with pytest.raises(MsgraphSdkMissing, match="pip install msgraph-sdk"):
        asyncio.run(run_msgraph_sdk(tenant, "contoso", contoso_ids, seconds=0.0))
    assert not msgraph_sdk_available()


def test_start_tenant_in_a_child_process(tmp_path: Path) -> None:
    with start_tenant(tmp_path, [("alpha", 300, 60), ("beta", 200, 40)], latency=MODEL_LATENCY,
                      latency_fallback=SIMPLE_LATENCY) as t:
        assert t.pid is not None and t.base_url.startswith("https://127.0.0.1:")
        assert t.latency in (MODEL_LATENCY, SIMPLE_LATENCY)  # the per-kind model, where the tenant knows it
        assert {x["name"] for x in t.info["tenants"]} == {"alpha", "beta"}
        ids = t.agent_ids("alpha")
        assert 50 <= len(ids) <= 60 and len(set(ids)) == len(ids)
        assert t.control("GET", "faults")["latency"] == t.latency
        t.control("POST", "/_emulator/limits", {"presence_requests": 1000})
        t.fresh_budgets()
        assert t.control("GET", "faults")["latency"] == t.latency  # kept across the reset
        assert t.stats()["throttled"] == 0
        with httpx.Client(verify=t.ssl_context()) as c:
            assert c.get(f"{t.base_url}/_emulator/info").status_code == 200
        cpu = t.cpu_seconds()
        assert cpu is not None and cpu > 0
        pid = t.pid
    assert t.pid is None and not Path(f"/proc/{pid}").exists()  # stopped and reaped


def test_start_tenant_reports_a_refused_latency(tmp_path: Path) -> None:
    with pytest.raises(TenantError, match="latency"):
        start_tenant(tmp_path, [("alpha", 50, 10)], latency="nonsense:1", latency_fallback=None)
