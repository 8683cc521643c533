"""A restart must not trip over state saved against another endpoint (the demo's tenant gets a new port each time;
an operator may change GraphUrl): a stored deltaLink for another origin means a fresh directory read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import e2e_support as sup
import httpx

from sync.emulator.server import EmulatorServer
from sync.store import Store


def test_delta_link_of_another_endpoint_starts_a_full_read(tmp_path: Path, emulator: EmulatorServer,
                                                           tenant_info: dict[str, Any],
                                                           frozen_clock: httpx.Client) -> None:
    args, state, out = sup.contoso_app_run(tmp_path, tenant_info, emulator.tls.ca_cert)
    first = sup.run_cli(args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr

    store = Store(state / "presence-sync.sqlite")
    try:
        link = store.get_delta_link("contoso")
        assert link and link.startswith(emulator.base_url)
        # The same tenant, saved while it was served from another address (a port nothing listens on).
        store.set_delta_link("contoso", link.replace(emulator.base_url, "https://127.0.0.1:9"))
        users_before = len(store.load_directory("contoso"))
    finally:
        store.close()

    frozen_clock.post("/_emulator/stats/reset")
    second = sup.run_cli(args, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "another Graph endpoint" in second.stderr
    stats = frozen_clock.get("/_emulator/stats").json()
    assert stats["requests"].get("graph.users.delta", 0) >= 1, stats["requests"]

    store = Store(state / "presence-sync.sqlite")
    try:
        assert (store.get_delta_link("contoso") or "").startswith(emulator.base_url)
        assert len(store.load_directory("contoso")) == users_before
    finally:
        store.close()
