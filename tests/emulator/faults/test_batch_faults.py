"""Per-item 429s inside Graph ``$batch`` (fault switch) and the list write log the control API reports."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from sync.emulator.model.pause import IN_FLIGHT
from sync.emulator.model.tenant import SpList
from sync.emulator.server import EmulatorServer

from ..conftest import CONTOSO

CAME_BACK = IN_FLIGHT + 0.02  # seconds: an early retry that comes back after the 429 was read

VERBOSE = "application/json;odata=verbose"


def _batch(graph: httpx.Client) -> httpx.Response:
    return graph.post("/v1.0/$batch", json={"requests": [
        {"id": "1", "method": "GET", "url": "/domains"},
        {"id": "2", "method": "GET", "url": "/users?$top=1"},
    ]})


def test_batch_items_answered_429_and_early_comebacks_counted(graph: httpx.Client, faults: Any) -> None:
    shown = faults(batch_item_429_rate=1.0, batch_item_retry_after=0.5, seed=5)
    assert shown["batch_item_429_rate"] == 1.0 and shown["batch_item_retry_after"] == 0.5
    before = graph.get("/_emulator/stats").json()
    r = _batch(graph)
    assert r.status_code == 200
    for item in r.json()["responses"]:
        assert item["status"] == 429
        assert 0.4 <= float(item["headers"]["Retry-After"]) <= 0.5
        assert item["body"]["error"]["code"] == "TooManyRequests"
    time.sleep(CAME_BACK)  # after the client read the 429 (model/pause.py: sooner was still on its way)
    again = _batch(graph)  # the same items at once, long before their Retry-After
    assert {i["status"] for i in again.json()["responses"]} == {429}
    after = graph.get("/_emulator/stats").json()
    assert after["faults_injected"]["batch_item_429"] - before["faults_injected"].get("batch_item_429", 0) == 4
    assert after["retry_after_violations"] - before["retry_after_violations"] == 2


def test_batch_item_429s_obey_paths_and_rate(graph: httpx.Client, faults: Any) -> None:
    faults(batch_item_429_rate=1.0, paths=["/sites"])
    assert {i["status"] for i in _batch(graph).json()["responses"]} == {200}
    faults(batch_item_429_rate=0.5, seed=9)
    statuses = [i["status"] for _ in range(20) for i in _batch(graph).json()["responses"]]
    assert 8 <= statuses.count(429) <= 32 and statuses.count(200) + statuses.count(429) == 40
    with pytest.raises(AssertionError):
        faults(batch_item_429_rate=1.5)


@pytest.fixture()
def scratch(emulator: EmulatorServer, http: httpx.Client) -> Iterator[SpList]:
    site = emulator.state.world.tenants[CONTOSO].site
    lst = SpList(id=str(uuid.uuid4()), title=f"W{uuid.uuid4().hex[:8]}", columns=["Title", "Team"])
    for i in range(1, 4):
        lst.add({"Title": f"Agent {i}", "Team": "Red"})
    site.lists[lst.title.lower()] = lst
    yield lst
    site.lists.pop(lst.title.lower(), None)


def test_write_log_counts_updates_in_and_out_of_batches(http: httpx.Client, emulator: EmulatorServer,
                                                        scratch: SpList) -> None:
    st = emulator.state
    site = st.world.tenants[CONTOSO].site
    app = st.tokens.issue_access(tenant_id=CONTOSO, client_id="writes-app", permissions={"Sites.ReadWrite.All"},
                                 audience=emulator.base_url, via_secret=True).token
    user = st.tokens.issue_access(tenant_id=CONTOSO, client_id="writes-user", permissions={"Sites.ReadWrite.All"},
                                  audience=emulator.base_url, user_upn="svc-presence@contoso.com").token
    items = f"/sites/{site.hostname}:{site.path}:/lists/{scratch.id}/items"
    graph_auth = {"Authorization": f"Bearer {app}"}
    assert http.patch(f"/v1.0{items}/1/fields", json={"Team": "A"}, headers=graph_auth).status_code == 200
    r = http.post("/v1.0/$batch", headers=graph_auth, json={"requests": [
        {"id": "1", "method": "PATCH", "url": f"{items}/1/fields", "headers": {"Content-Type": "application/json"},
         "body": {"Team": "B"}}]})
    assert r.json()["responses"][0]["status"] == 200
    merge = http.post(f"/sites/contoso-agents/_api/web/lists/GetByTitle('{scratch.title}')/items(2)",
                      headers={"Authorization": f"Bearer {user}", "X-HTTP-Method": "MERGE", "If-Match": "*",
                               "Content-Type": VERBOSE, "Accept": VERBOSE},
                      json={"__metadata": {"type": scratch.entity_type_name}, "Team": "C"})
    assert merge.status_code == 204
    again = http.post("/v1.0/$batch", headers=graph_auth, json={"requests": [  # the same value once more
        {"id": "1", "method": "PATCH", "url": f"{items}/1/fields", "headers": {"Content-Type": "application/json"},
         "body": {"Team": "B"}}]})
    assert again.json()["responses"][0]["status"] == 200
    got = http.get("/_emulator/lists/writes", params={"tenant": "contoso", "list": scratch.title}).json()
    assert got["writes"] == {"1": 3, "2": 1} and got["total"] == 4
    assert got["unchanged"] == {"1": 1} and got["unchanged_total"] == 1
    assert http.post("/_emulator/lists/writes/reset").json() == {"reset": True}
    got = http.get("/_emulator/lists/writes", params={"tenant": "contoso", "list": scratch.title}).json()
    assert got["writes"] == {} and got["total"] == 0 and got["unchanged_total"] == 0
    assert http.get("/_emulator/lists/writes", params={"tenant": "contoso"}).json()["list"] == "Agents"
