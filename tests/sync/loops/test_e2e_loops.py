"""The loops against a tenant of their own (a generated 1,600-agent list), with SharePoint made slow and throttled.

- Presence keeps its schedule while every SharePoint call takes seconds and write-back items are answered 429:
  the tenant's own log of presence reads shows no agent waiting for the roster or the write-back.
- ``run --once`` writes every changed item of a 1,600-item list through per-item 429s inside Graph ``$batch``,
  never sends an item twice, and exits 0.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import e2e_support as sup
import httpx
import pytest

from sync.emulator.model.generate import generate_tenant
from sync.emulator.server import EmulatorServer

AGENTS = 1600


@pytest.fixture(scope="module")
def loadco(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorServer]:
    """A tenant of 2,400 users and a 1,600-item Agent list, served by a local tenant of its own."""
    fixtures = tmp_path_factory.mktemp("loadco-fixtures")
    doc = generate_tenant(2400, AGENTS, 11, "loadco")
    (fixtures / "loadco.json").write_text(json.dumps(doc), encoding="utf-8")
    srv = EmulatorServer(state_dir=tmp_path_factory.mktemp("loadco-state"), fixtures_dir=fixtures).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture()
def ctl(loadco: EmulatorServer) -> Iterator[httpx.Client]:
    with sup.control(loadco.base_url, loadco.tls.ca_cert) as c:
        c.post("/_emulator/reset")
        yield c
        c.post("/_emulator/reset")


def app_config(tmp: Path, loadco: EmulatorServer, ctl: httpx.Client, writeback: str) -> tuple[Path, Path, Path]:
    info = ctl.get("/_emulator/info").json()
    t = info["tenants"][0]
    app = next(a for a in t["apps"] if a["kind"] == "confidential" and a.get("client_secret"))
    state, out = tmp / "state", tmp / "out"
    acc = sup.Account("loadco", t["name"], app["client_id"], secret=app["client_secret"])
    config = sup.write_config(tmp / "config.xml", [acc], info, loadco.tls.ca_cert, state,
                              source_attrs="DomainsRefresh=\"300\"")
    text = config.read_text(encoding="utf-8").replace("<Accounts>", f"{writeback}\n    <Accounts>")
    config.write_text(text, encoding="utf-8")
    sup.ARTIFACTS.add_dir(state, out)
    return config, state, out


def item_writes(ctl: httpx.Client) -> dict[str, int]:
    r = ctl.get("/_emulator/lists/writes", params={"tenant": "loadco"})
    assert r.status_code == 200, r.text
    return dict(r.json()["writes"])


def test_once_writes_every_item_through_per_item_429s_and_none_twice(tmp_path: Path, loadco: EmulatorServer,
                                                                       ctl: httpx.Client) -> None:
    # A generous quota so the test is about 429s, not about waiting minutes for SharePoint's budget.
    ctl.post("/_emulator/limits", json={"sharepoint_ru_per_minute": 50_000})
    ctl.post("/_emulator/faults", json={"batch_item_429_rate": 0.03, "batch_item_retry_after": 0.2, "seed": 5})
    config, state, out = app_config(tmp_path, loadco, ctl, '<WriteBack ResourceUnitsPerMinute="50000"/>')
    ran = sup.run_cli(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out), "--once"],
                      cwd=tmp_path, timeout=240)
    assert ran.returncode == 0, ran.stderr
    writes = item_writes(ctl)
    stats = ctl.get("/_emulator/stats").json()
    assert len(writes) == AGENTS  # every item got its UpnStatus (and presence for the collectable ones)
    assert max(writes.values()) == 1, {k: v for k, v in writes.items() if v > 1}  # none twice
    assert stats["faults_injected"].get("batch_item_429", 0) > 0  # the throttling did happen
    assert "Traceback" not in ran.stderr


def test_presence_keeps_its_schedule_while_sharepoint_is_slow_and_throttled(tmp_path: Path, loadco: EmulatorServer,
                                                                            ctl: httpx.Client) -> None:
    # Every SharePoint call (the list read and the write-back $batch) takes 2 s; a quarter of the write-back
    # items are answered 429; the roster is re-read every 2 s. Presence runs every 0.5 s beside all that.
    ctl.post("/_emulator/faults", json={"latency": "sites=2000,batch=2000", "batch_item_429_rate": 0.25,
                                        "seed": 9})
    ctl.post("/_emulator/limits", json={"sharepoint_ru_per_minute": 50_000})
    config, state, out = app_config(tmp_path, loadco, ctl, '<WriteBack Interval="2" ResourceUnitsPerMinute="50000"/>')
    run = sup.Running(["run", "--config", str(config), "--state-dir", str(state), "--out", str(out),
                       "--interval", "0.5"], cwd=tmp_path)
    try:
        assert run.wait_for(lambda _: len(run.cycle_lines("loadco")) >= 2, 90), run.text
        ctl.post("/_emulator/presence-reads/reset")
        ctl.post("/_emulator/stats/reset")
        seen = len(run.cycle_lines("loadco"))
        assert run.wait_for(lambda _: len(run.cycle_lines("loadco")) >= seen + 16, 60), run.text
        reads: dict[str, Any] = ctl.get("/_emulator/presence-reads", params={"tenant": "loadco"}).json()
        stats = ctl.get("/_emulator/stats").json()
        writes = item_writes(ctl)
    finally:
        rc = run.terminate(signal.SIGTERM)
    assert rc == 0, run.text
    # The slow work really ran during those ticks: Agent-list reads, item writes and per-item 429s.
    assert sum(v for k, v in stats["requests"].items() if k.startswith("graph.list")) > 0, stats["requests"]
    assert sum(writes.values()) > 0 and stats["faults_injected"].get("batch_item_429", 0) > 0, stats
    # If presence waited for SharePoint, some reads of the same agent would be >= 2 s apart.
    assert reads["reads"] > 0 and reads["gap_max"] < 1.5, reads
    assert reads["gap_p95"] < 0.9, reads
    assert "Traceback" not in run.text
