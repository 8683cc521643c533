"""Write-back through SharePoint REST (office365, delegated token) against the local tenant: batches of at most
100 sent once, each part's answer mapped to its item, throttled items handed back to re-send."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import e2e_support as sup
import httpx

from sync.emulator.server import EmulatorServer
from sync.sharepoint import SharePointRoster


def versions(emulator: EmulatorServer) -> dict[int, int]:
    t = emulator.state.world.resolve_tenant("contoso")
    return {i: item.version for i, item in t.site.list_by_title("Agents").items.items()}


def roster(emulator: EmulatorServer, tenant_info: dict[str, Any]) -> SharePointRoster:
    """contoso's Agent list with a delegated token the tenant issued to the service account."""
    state = emulator.state
    tenant = state.world.resolve_tenant("contoso")
    token = state.tokens.issue_access(tenant_id=tenant.tenant_id, client_id=sup.CONTOSO_PUBLIC_APP,
                                      permissions={"Sites.ReadWrite.All"}, audience=emulator.base_url,
                                      user_upn=sup.CONTOSO_SVC[0]).token
    site_url = next(t["site_url"] for t in tenant_info["tenants"] if t["name"] == "contoso")
    return SharePointRoster(site_url, "Agents", "UPN",
                            lambda: {"access_token": token, "token_type": "Bearer", "expires_in": 3600},
                            str(emulator.tls.ca_cert))


def updates_for(ids: list[int], tag: str) -> dict[int, dict[str, str]]:
    return {i: {"Availability": f"{tag}-{i}", "Activity": tag} for i in ids}


def test_110_items_go_in_two_batches_and_all_are_done(emulator: EmulatorServer, tenant_info: dict[str, Any],
                                                      ctl: httpx.Client) -> None:
    ids = sorted(sup.list_fields(emulator, "contoso"))[:110]
    updates = updates_for(ids, "Busy")
    before = versions(emulator)
    sp = roster(emulator, tenant_info)
    try:
        result = asyncio.run(sp.write(updates))
    finally:
        sp.close()
    assert result.done == ids and result.written == 110 and not result.throttled and not result.failed
    after = versions(emulator)
    assert all(after[i] == before[i] + 1 for i in ids)
    items = sup.list_fields(emulator, "contoso")
    assert all(items[i]["Availability"] == f"Busy-{i}" for i in ids)
    requests = ctl.get("/_emulator/stats").json()["requests"]
    assert requests["sharepoint.batch"] == 2 and requests["sharepoint.item.update"] == 110


def test_refused_parts_are_failed_and_the_rest_done(emulator: EmulatorServer, tenant_info: dict[str, Any],
                                                    ctl: httpx.Client) -> None:
    first = min(sup.list_fields(emulator, "contoso"))
    sp = roster(emulator, tenant_info)
    try:
        result = asyncio.run(sp.write({first: {"Activity": "InACall"}, 999_999: {"Activity": "InACall"}}))
    finally:
        sp.close()
    assert result.done == [first] and set(result.failed) == {999_999} and not result.throttled
    assert "HTTP 404" in result.failed[999_999]


def test_throttled_parts_come_back_and_only_they_are_resent(
        emulator: EmulatorServer, tenant_info: dict[str, Any], ctl: httpx.Client,
        limits: Callable[[dict[str, Any]], None]) -> None:
    ids = sorted(sup.list_fields(emulator, "contoso"))[:110]
    updates = updates_for(ids, "Away")
    before = versions(emulator)
    # contextinfo (1 RU) and the list's type name (2 RU) count too: 30 updates (2 RU each) of the first batch fit.
    ctl.post("/_emulator/reset")
    limits({"sharepoint_ru_per_minute": 1 + 2 + 30 * 2})
    sp = roster(emulator, tenant_info)
    try:
        first = asyncio.run(sp.write(updates))
        batches = ctl.get("/_emulator/stats").json()["requests"]["sharepoint.batch"]
        ctl.post("/_emulator/reset")  # stands in for waiting out the Retry-After (about a minute here)
        limits({"sharepoint_ru_per_minute": 1250})
        again = asyncio.run(sp.write({i: updates[i] for i in first.throttled}))
    finally:
        sp.close()
    assert first.done == ids[:30] and sorted(first.throttled) == ids[30:] and not first.failed
    assert batches == 1  # after a throttled batch the second one is not sent: its 10 items come back throttled
    assert first.retry_after is not None and first.retry_after > 0
    assert again.done == ids[30:] and not again.throttled and not again.failed
    after = versions(emulator)
    assert all(after[i] == before[i] + 1 for i in ids), "an item was written twice or not at all"
