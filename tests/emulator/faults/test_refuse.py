"""The ``refuse`` switch: the local tenant answers chosen request shapes as a tenant that does not support them,
and every shape that always works keeps working."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from sync.emulator.faults.refuse import REFUSABLE_SHAPES, parse_refuse
from sync.emulator.server import EmulatorServer

ADV = {"ConsistencyLevel": "eventual"}
RANGE = "$filter=userPrincipalName ge 'a' and userPrincipalName le 'm'"


@pytest.fixture()
def ctl(emulator: EmulatorServer, http: httpx.Client) -> Iterator[httpx.Client]:
    yield http
    assert http.post("/_emulator/faults", json={"reset": True}).status_code == 200


def refuse(ctl: httpx.Client, shapes: object) -> None:
    r = ctl.post("/_emulator/faults", json={"refuse": shapes})
    assert r.status_code == 200, r.text


def error_of(r: httpx.Response) -> tuple[int, str, str]:
    err = r.json()["error"]
    return r.status_code, err["code"], err["message"]


def test_names_parse_and_unknown_ones_are_refused(ctl: httpx.Client) -> None:
    assert parse_refuse("ge, LE") == ["ge", "le"] and parse_refuse(["batch"]) == ["batch"]
    assert parse_refuse(None) == [] and set(parse_refuse(",".join(REFUSABLE_SHAPES))) == set(REFUSABLE_SHAPES)
    with pytest.raises(ValueError, match="known: ge"):
        parse_refuse("gt")
    bad = ctl.post("/_emulator/faults", json={"refuse": ["gt"]})
    assert bad.status_code == 400 and "gt" in bad.text
    refuse(ctl, "ge,batch")
    assert ctl.get("/_emulator/faults").json()["refuse"] == ["ge", "batch"]
    ctl.post("/_emulator/faults", json={"reset": True})
    assert ctl.get("/_emulator/faults").json()["refuse"] == []


@pytest.mark.parametrize("op,filter_", [("ge", "userPrincipalName ge 'a'"), ("le", "userPrincipalName le 'm'"),
                                        ("startsWith", "startswith(userPrincipalName,'a')")])
def test_an_operator_is_refused_in_a_default_query_and_accepted_as_an_advanced_one(
        ctl: httpx.Client, graph: httpx.Client, op: str, filter_: str) -> None:
    refuse(ctl, [op.lower()])
    status, code, message = error_of(graph.get(f"/v1.0/users?$top=5&$filter={filter_}"))
    assert (status, code) == (400, "Request_UnsupportedQuery")
    assert f"Operator '{op}' is not supported" in message and "ConsistencyLevel:eventual" in message
    ok = graph.get(f"/v1.0/users?$top=5&$count=true&$filter={filter_}", headers=ADV)
    assert ok.status_code == 200 and "@odata.count" in ok.json(), ok.text
    assert graph.get("/v1.0/users?$top=5").status_code == 200  # plain paging always works
    stats = ctl.get("/_emulator/stats").json()["faults_injected"]
    assert stats[f"refuse_{op.lower()}"] >= 1


def test_advanced_ranges_page_with_their_parameters(ctl: httpx.Client, graph: httpx.Client) -> None:
    refuse(ctl, ["ge", "le"])
    page = graph.get(f"/v1.0/users?$top=10&$count=true&{RANGE}", headers=ADV).json()
    seen = len(page["value"])
    while "@odata.nextLink" in page:
        nxt = graph.get(page["@odata.nextLink"], headers=ADV)
        assert nxt.status_code == 200, nxt.text
        page = nxt.json()
        seen += len(page["value"])
    assert seen > 10


def test_advanced_refused_and_the_latest_delta_token(ctl: httpx.Client, graph: httpx.Client) -> None:
    refuse(ctl, ["advanced", "deltatoken-latest"])
    assert error_of(graph.get(f"/v1.0/users?$top=5&$count=true&{RANGE}", headers=ADV))[:2] == (
        400, "Request_UnsupportedQuery")
    status, code, message = error_of(graph.get("/v1.0/users/delta?$deltatoken=latest"))
    assert (status, code) == (400, "Request_UnsupportedQuery") and "latest" in message
    first = graph.get("/v1.0/users/delta")  # the initial full round still works
    assert first.status_code == 200 and first.json()["value"]


def test_batch_and_list_route(ctl: httpx.Client, graph: httpx.Client, emulator: EmulatorServer) -> None:
    refuse(ctl, ["batch"])
    body = {"requests": [{"id": "1", "method": "GET", "url": "/users?$top=1"}]}
    assert error_of(graph.post("/v1.0/$batch", json=body))[:2] == (501, "NotImplemented")
    assert graph.get("/v1.0/users/" + graph.get("/v1.0/users?$top=1").json()["value"][0]["id"]).status_code == 200
    refuse(ctl, ["list-route"])
    assert error_of(graph.get("/v1.0/sites/root"))[:2] == (501, "notSupported")
    ctl.post("/_emulator/faults", json={"replace": True, "refuse": ["list-route"]})
    inner = graph.post("/v1.0/$batch", json={"requests": [{"id": "1", "method": "GET", "url": "/sites/root"}]})
    assert inner.status_code == 200 and inner.json()["responses"][0]["status"] == 501

