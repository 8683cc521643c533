"""Graph JSON batching (POST /v1.0/$batch) over loopback TLS with httpx."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from sync.emulator.model.tenant import Tenant
from sync.emulator.server import EmulatorServer

CONTOSO = "6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"
APP_ID = "11111111-2222-4333-8444-555555555555"
APP_SECRET = "contoso-app-secret-value"
JSON = {"Content-Type": "application/json"}


def batch(client: httpx.Client, requests: list[dict[str, Any]]) -> httpx.Response:
    return client.post("/v1.0/$batch", json={"requests": requests})


def by_id(r: httpx.Response) -> dict[str, dict[str, Any]]:
    assert r.status_code == 200, r.text
    return {item["id"]: item for item in r.json()["responses"]}


def test_mixed_items(graph: httpx.Client, contoso: Tenant, emulator: EmulatorServer) -> None:
    user = contoso.users[sorted(contoso.users)[0]]
    ids = sorted(u.id for u in contoso.users.values() if u.teams_licensed)[:3]
    r = batch(graph, [
        {"id": "users", "method": "GET", "url": "/users?$top=2&$select=id,userPrincipalName"},
        {"id": "byUpn", "method": "GET", "url": f"users/{quote(user.user_principal_name)}"},
        {"id": "presence", "method": "POST", "url": "/communications/getPresencesByUserId",
         "headers": JSON, "body": {"ids": ids}},
        {"id": "missing", "method": "GET", "url": "/users/nobody@contoso.com"},
        {"id": "absolute", "method": "GET", "url": f"{emulator.base_url}/v1.0/domains"},
        {"id": "bad-top", "method": "GET", "url": "/users?$top=1000"},
    ])
    items = by_id(r)
    assert items["users"]["status"] == 200
    assert len(items["users"]["body"]["value"]) == 2
    assert set(items["users"]["body"]["value"][0]) == {"id", "userPrincipalName"}
    assert items["byUpn"]["body"]["id"] == user.id
    assert sorted(p["id"] for p in items["presence"]["body"]["value"]) == ids
    assert items["missing"]["status"] == 404
    assert items["missing"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert items["absolute"]["status"] == 200 and items["absolute"]["body"]["value"]
    assert items["bad-top"]["status"] == 400
    assert all("headers" in item and "Content-Type" in item["headers"] for item in items.values())


def test_depends_on_orders_and_fails_dependents(graph: httpx.Client, emulator: EmulatorServer) -> None:
    before = emulator.state.stats.requests["graph.domains"]
    items = by_id(batch(graph, [
        {"id": "3", "method": "GET", "url": "/domains", "dependsOn": ["2"]},
        {"id": "2", "method": "GET", "url": "/users/nobody@contoso.com", "dependsOn": ["1"]},
        {"id": "1", "method": "GET", "url": "/domains"},
    ]))
    assert (items["1"]["status"], items["2"]["status"], items["3"]["status"]) == (200, 404, 424)
    assert emulator.state.stats.requests["graph.domains"] == before + 1  # the dependent never ran


def test_more_than_20_requests_is_400(graph: httpx.Client) -> None:
    reqs = [{"id": str(i), "method": "GET", "url": "/domains"} for i in range(21)]
    r = batch(graph, reqs)
    assert r.status_code == 400
    assert r.json()["error"]["message"] == "Number of requests inside batch exceeds the limit."
    assert batch(graph, reqs[:20]).status_code == 200


@pytest.mark.parametrize("requests", [
    [],
    [{"id": "1", "method": "GET"}],
    [{"id": "1", "method": "GET", "url": "/domains"}, {"id": "1", "method": "GET", "url": "/domains"}],
    [{"id": "1", "method": "POST", "url": "/communications/getPresencesByUserId", "body": {"ids": []}}],
    [{"id": "1", "method": "GET", "url": "/domains", "dependsOn": ["9"]}],
])
def test_malformed_batches_are_400(graph: httpx.Client, requests: list[dict[str, Any]]) -> None:
    assert batch(graph, requests).status_code == 400


def test_nested_batch_is_a_400_item(graph: httpx.Client) -> None:
    items = by_id(batch(graph, [{"id": "1", "method": "POST", "url": "/$batch", "headers": JSON,
                                 "body": {"requests": []}}]))
    assert items["1"]["status"] == 400


def test_items_are_permission_checked(http: httpx.Client, emulator: EmulatorServer) -> None:
    token = emulator.state.tokens.issue_access(tenant_id=CONTOSO, client_id=APP_ID, permissions={"User.Read.All"},
                                               audience="https://graph.microsoft.com").token
    r = http.post("/v1.0/$batch", headers={"Authorization": f"Bearer {token}"}, json={"requests": [
        {"id": "1", "method": "GET", "url": "/users?$top=1"},
        {"id": "2", "method": "GET", "url": "/domains"}]})
    items = by_id(r)
    assert (items["1"]["status"], items["2"]["status"]) == (200, 403)


def test_throttled_item_is_429_inside_a_200_envelope(graph: httpx.Client, contoso: Tenant,
                                                     limits: EmulatorServer) -> None:
    state = limits.state
    state.limits.presence_requests = 2
    state.apply_limits()
    ids = sorted(u.id for u in contoso.users.values() if u.teams_licensed)[:1]
    throttled = state.stats.throttled
    item = {"method": "POST", "url": "/communications/getPresencesByUserId", "headers": JSON, "body": {"ids": ids}}
    r = batch(graph, [{"id": str(i), **item} for i in range(3)])
    items = by_id(r)
    assert [items[str(i)]["status"] for i in range(3)] == [200, 200, 429]
    late = items["2"]
    assert float(late["headers"]["Retry-After"]) > 0
    assert late["body"]["error"]["code"] == "TooManyRequests"
    assert state.stats.throttled == throttled + 1
