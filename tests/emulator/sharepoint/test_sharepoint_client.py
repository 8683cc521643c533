"""SharePoint REST driven by office365-rest-python-client's ClientContext, exactly as the sync job uses it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from office365.runtime.client_request_exception import ClientRequestException
from office365.sharepoint.client_context import ClientContext

from sync.emulator.model.tenant import SpList
from sync.emulator.server import EmulatorServer

CONTOSO = "6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"
PUBLIC_APP = "22222222-3333-4444-8555-666666666666"


def delegated(emulator: EmulatorServer) -> str:
    return emulator.state.tokens.issue_access(
        tenant_id=CONTOSO, client_id=PUBLIC_APP, permissions={"Sites.ReadWrite.All", "User.ReadBasic.All"},
        audience=emulator.base_url, user_upn="svc-presence@contoso.com").token


_sessions: list[requests.Session] = []


def context(emulator: EmulatorServer, ca_file: Path, token: str) -> ClientContext:
    session = requests.Session()  # ours, so its keep-alive connections can be closed after the test
    _sessions.append(session)
    return ClientContext(f"{emulator.base_url}/sites/contoso-agents").with_access_token(
        lambda: {"access_token": token, "token_type": "Bearer", "expires_in": 3600}
    ).with_transport(verify=str(ca_file), session=session)


@pytest.fixture(autouse=True)
def _close_sessions() -> Iterator[None]:
    """Idle TLS keep-alives would hold up the shared server's graceful stop."""
    yield
    while _sessions:
        _sessions.pop().close()


@pytest.fixture()
def temp_list(emulator: EmulatorServer) -> Iterator[SpList]:
    """A 7-item list with a space in its title, removed afterwards."""
    site = emulator.state.world.tenants[CONTOSO].site
    lst = SpList(id=str(uuid.uuid4()), title=f"Temp {uuid.uuid4().hex[:6]}", columns=["Title", "UPN", "Team"])
    for i in range(1, 8):
        lst.add({"Title": f"Agent {i}", "UPN": f"agent{i}@contoso.com", "Team": "Red" if i % 2 else "Blue"})
    site.lists[lst.title.lower()] = lst
    yield lst
    site.lists.pop(lst.title.lower(), None)


def test_reads_a_three_page_list_following_next(emulator: EmulatorServer, ca_file: Path, temp_list: SpList) -> None:
    ctx = context(emulator, ca_file, delegated(emulator))
    before = emulator.state.stats.requests["sharepoint.items"]
    items = ctx.web.lists.get_by_title(temp_list.title).items.get_all(page_size=3).execute_query()
    assert [it.properties["Id"] for it in items] == [1, 2, 3, 4, 5, 6, 7]
    assert [it.properties["UPN"] for it in items][:2] == ["agent1@contoso.com", "agent2@contoso.com"]
    assert emulator.state.stats.requests["sharepoint.items"] - before == 3  # pages of 3, 3 and 1


def test_reads_the_whole_agents_list(emulator: EmulatorServer, ca_file: Path) -> None:
    ctx = context(emulator, ca_file, delegated(emulator))
    agents = emulator.state.world.tenants[CONTOSO].site.list_by_title("Agents")
    assert agents is not None and len(agents.items) > 100
    lst = ctx.web.lists.get_by_title("Agents")
    items = lst.items.get_all().execute_query()  # default page of 100, so at least two pages
    assert sorted(it.properties["Id"] for it in items) == sorted(agents.items)
    assert all("UPN" in it.properties for it in items)


def test_updates_two_items_in_one_batch(emulator: EmulatorServer, ca_file: Path, temp_list: SpList) -> None:
    ctx = context(emulator, ca_file, delegated(emulator))
    lst = ctx.web.lists.get_by_title(temp_list.title).get().select(
        ["ListItemEntityTypeFullName", "Id"]).execute_query()
    type_name = lst.properties["ListItemEntityTypeFullName"]
    assert type_name == temp_list.entity_type_name and "_x0020_" in type_name
    items = list(lst.items.get_all(page_size=10).execute_query())
    stats = emulator.state.stats.requests
    batches, updates = stats["sharepoint.batch"], stats["sharepoint.item.update"]
    for it, team in zip(items[:2], ["Green", "Yellow"], strict=True):
        it._entity_type_name = type_name
        it.set_property("Team", team).update()
    ctx.execute_batch()
    assert stats["sharepoint.batch"] - batches == 1
    assert stats["sharepoint.item.update"] - updates == 2
    assert (temp_list.items[1].fields["Team"], temp_list.items[2].fields["Team"]) == ("Green", "Yellow")
    assert (temp_list.items[1].version, temp_list.items[2].version, temp_list.items[3].version) == (2, 2, 1)


def test_adds_one_item(emulator: EmulatorServer, ca_file: Path, temp_list: SpList) -> None:
    ctx = context(emulator, ca_file, delegated(emulator))
    lst = ctx.web.lists.get_by_title(temp_list.title)
    added = lst.add_item({"Title": "New agent", "UPN": "new.agent@contoso.com"}).execute_query()
    assert added.properties["Id"] == 8
    assert temp_list.items[8].fields == {"Title": "New agent", "UPN": "new.agent@contoso.com"}


def test_a_failed_part_surfaces_as_an_error_and_others_still_apply(
        emulator: EmulatorServer, ca_file: Path, temp_list: SpList) -> None:
    ctx = context(emulator, ca_file, delegated(emulator))
    lst = ctx.web.lists.get_by_title(temp_list.title)
    ok, bad = lst.get_item_by_id(1), lst.get_item_by_id(2)
    for it in (ok, bad):
        it._entity_type_name = temp_list.entity_type_name
    ok.set_property("Team", "Purple").update()
    bad.set_property("NoSuchColumn", "x").update()
    with pytest.raises(ClientRequestException) as exc_info:
        ctx.execute_batch()
    assert "NoSuchColumn" in str(exc_info.value)
    del exc_info  # its traceback pins a live connection, which would hold up the server's graceful stop
    assert temp_list.items[1].fields["Team"] == "Purple"  # not transactional
    assert "NoSuchColumn" not in temp_list.items[2].fields
