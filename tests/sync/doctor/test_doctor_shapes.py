"""The "request shapes" row of ``doctor``, without a tenant: how answers are classified (as the job classifies
them), which rung of each ladder the row says the job will use, when it warns or fails and what it says to do,
and which probes are sent (slower rungs only when every faster one was refused). The probes go through the
doctor's real ``Caller`` over an ``httpx.MockTransport`` that answers as a refusing tenant would."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote

import httpx
import pytest

from sync.doctor.probe import Answer, Caller
from sync.doctor.rules import FAIL, OK, WARN
from sync.doctor.shapes import (
    ACCEPTED,
    FAILED,
    PROBES,
    REFUSED,
    RUNG_NEEDS,
    Seen,
    ShapeProbes,
    classify,
    judge,
)
from sync.graph.shapes import LADDERS

FIRST = ("startswith", "ge", "le", "advanced", "deltatoken-latest", "batch")


def answer(status: int, code: str = "", path: str = "users") -> Answer:
    return Answer("GET", f"https://graph.test/v1.0/{path}", status, code=code,
                  message="Operator 'le' is not supported" if status == 400 else "")


def seen(refused: Iterable[str] = (), failed: dict[str, int] | None = None, extra: Iterable[str] = (),
         list_route: int = 200) -> dict[str, Seen]:
    """The first probes (and ``extra``), accepted unless named; the list route with status ``list_route``."""
    out: dict[str, Seen] = {}
    for name in (*FIRST, *extra):
        status = 400 if name in refused else (failed or {}).get(name, 200)
        out[name] = Seen(classify(answer(status)), answer(status))
    route = answer(list_route, "notSupported" if list_route == 501 else "", "sites/x:/sites/a")
    out["list-route"] = Seen(classify(route), route)
    return out


def test_classify_follows_the_jobs_idea_of_a_refusal() -> None:
    assert classify(answer(200)) == ACCEPTED and classify(answer(204)) == ACCEPTED
    assert classify(answer(400, "Request_UnsupportedQuery")) == REFUSED
    assert classify(answer(501, "NotImplemented")) == REFUSED
    assert classify(answer(400, "syncStateNotFound")) == FAILED  # a stale delta token, not a shape
    for status in (0, 401, 403, 404, 429, 500, 503):
        assert classify(answer(status)) == FAILED


def test_every_rung_of_every_ladder_has_a_probe() -> None:
    """A rung added to graph/shapes.LADDERS must be judged here too."""
    assert set(RUNG_NEEDS) == {(name, rung) for name, lad in LADDERS.items() for rung in lad.shapes}


def test_everything_accepted_is_ok_and_names_the_fastest_rungs() -> None:
    row = judge("secret", "contoso", seen())
    assert row.status == OK and row.fix == "", row
    assert row.detail.startswith("accepted: startswith, ge, le, advanced, deltatoken-latest, batch, list-route;")
    assert "refused" not in row.detail
    assert "directory read: UPN partitions by startsWith;" in row.detail
    assert "directory change cursor: a delta cursor from $deltatoken=latest" in row.detail
    assert "Graph requests in bulk: $batch of 20 requests" in row.detail
    assert "Agent list: Graph's list route" in row.detail and "SharePoint REST writes" not in row.detail


def test_startswith_and_ge_refused_warns_that_the_read_uses_advanced_ranges() -> None:
    row = judge("secret", "contoso", seen(refused=("startswith", "ge")))
    assert row.status == WARN
    assert "refused: startswith, ge;" in row.detail
    assert ("directory read: UPN ranges as advanced queries (ConsistencyLevel: eventual, $count=true) "
            "(startswith, ge refused)") in row.detail
    assert row.fix.startswith("nothing to change: for the directory read the job uses UPN ranges as advanced "
                              "queries")
    assert "the first directory read may take a little longer" in row.fix


def test_only_startswith_refused_drops_one_rung() -> None:
    row = judge("password", "fabrikam", {**seen(refused=("startswith",)), "rest-batch": Seen(ACCEPTED)})
    assert row.status == WARN
    assert "directory read: UPN ranges (ge/le) (startswith refused)" in row.detail
    assert "SharePoint REST writes: SharePoint REST $batch of 100 updates" in row.detail
    assert "Agent list: SharePoint REST (/_api/web/lists), as every delegated account reads it" in row.detail


def test_every_partitioned_read_refused_warns_of_plain_paging() -> None:
    row = judge("secret", "contoso", seen(refused=("startswith", "ge", "le", "advanced"), extra=("paging",)))
    assert row.status == WARN
    assert "directory read: one /users read, page after page (startswith, ge, le, advanced refused)" in row.detail
    assert "one /users read, page after page instead" in row.fix and "presence does not wait" in row.fix


def test_no_way_to_read_the_directory_fails_with_the_ladders_fix() -> None:
    got = seen(refused=("startswith", "ge", "le", "advanced", "paging", "delta"), extra=("paging", "delta"))
    row = judge("secret", "contoso", got)
    assert row.status == FAIL
    assert "directory read: nothing left (startswith, ge, le, advanced, paging, delta refused)" in row.detail
    assert "User.Read.All" in row.fix and "presence-sync doctor" not in row.fix  # this is doctor already


def test_batch_and_deltatoken_latest_refused_warn_with_a_fix_for_each() -> None:
    got = seen(refused=("batch", "deltatoken-latest"), extra=("delta",))
    got["single"] = Seen(ACCEPTED, derived=True)
    row = judge("secret", "contoso", got)
    assert row.status == WARN
    assert "refused: deltatoken-latest, batch;" in row.detail and "single" not in row.detail.split(";")[0]
    assert "directory change cursor: a full /users/delta round beside the read (deltatoken-latest refused)" in (
        row.detail)
    assert "Graph requests in bulk: one request per call (batch refused)" in row.detail
    assert "full /users/delta round beside the read" in row.fix and "20 times the requests" in row.fix


def test_a_refused_list_route_fails_an_application_account_but_not_a_delegated_one() -> None:
    app = seen(list_route=501)
    app["sharepoint-rest"] = Seen(REFUSED, why="SharePoint REST takes no app-only token made from a client secret",
                                  derived=True)
    row = judge("secret", "contoso", app)
    assert row.status == FAIL
    assert "Agent list: nothing left (list-route, sharepoint-rest refused; SharePoint REST takes no" in row.detail
    assert "give account contoso a delegated login" in row.fix and "--roster FILE.csv" in row.fix
    row = judge("device", "contoso-dc", {**seen(list_route=501), "rest-batch": Seen(ACCEPTED)})
    assert row.status == WARN and "refused: list-route" in row.detail
    assert row.fix == "nothing to change: the job does not use list-route for this account"


def test_a_failed_probe_is_shown_but_not_judged() -> None:
    row = judge("secret", "contoso", seen(failed={"ge": 503}))
    assert row.status == WARN and "refused" not in row.detail
    assert "not judged: ge (GET https://graph.test/v1.0/users -> HTTP 503)" in row.detail
    assert "directory read: UPN partitions by startsWith;" in row.detail  # startswith still works
    assert row.fix.endswith("run doctor again")
    row = judge("secret", "contoso", seen(refused=("startswith",), failed={"le": 403}))
    assert "directory read: UPN ranges (ge/le) (startswith refused) (not confirmed: its probe failed)" in row.detail
    assert row.status == WARN and "permissions row" in row.fix and row.fix.startswith("nothing to change:")


# --- which requests are sent -----------------------------------------------------------------------------------


class Tenant:
    """Answers the probes as a tenant refusing ``refused`` does (400, 501 for $batch); records every request."""

    def __init__(self, refused: Iterable[str]) -> None:
        self.refused = set(refused)
        self.sent: list[str] = []

    def shape(self, request: httpx.Request) -> str:
        url = unquote(str(request.url))
        for name in ("advanced", "startswith", "ge", "le", "deltatoken-latest", "batch", "delta", "paging"):
            p = PROBES[name]
            if request.method == p.method and url.endswith("/v1.0/" + p.path) and (
                    name != "advanced" or request.headers.get("ConsistencyLevel") == "eventual"):
                return name
        return "rest-batch" if url.endswith("/_api/$batch") else "other"

    def __call__(self, request: httpx.Request) -> httpx.Response:
        name = self.shape(request)
        self.sent.append(name)
        if name in self.refused:
            status = 501 if name == "batch" else 400
            return httpx.Response(status, json={"error": {"code": "Request_UnsupportedQuery", "message": "no"}})
        return httpx.Response(200, json={"value": [{"id": "u1"}]})


def probe(refused: Iterable[str], mode: str = "secret") -> tuple[dict[str, Seen], list[str]]:
    tenant = Tenant(refused)
    with httpx.Client(transport=httpx.MockTransport(tenant)) as http:
        graph = Caller(http, "t", "https://graph.test/v1.0")
        rest = Caller(http, "s") if mode != "secret" else None
        site = answer(200, path="sites/x:/sites/a")
        got = ShapeProbes(graph, site, rest, "https://sp.test/sites/a/_api/web/lists/GetByTitle('Agents')",
                          site if rest else None).run(mode)
    return got, tenant.sent


def test_the_first_probes_only_when_everything_is_accepted() -> None:
    got, sent = probe(())
    assert sent == list(FIRST)  # the list route is the site row's answer, not sent again
    assert {n: s.verdict for n, s in got.items() if not s.derived} == {n: ACCEPTED for n in (*FIRST, "list-route")}


@pytest.mark.parametrize(("refused", "also"), [
    (("startswith", "ge"), []),
    (("startswith", "ge", "le", "advanced"), ["paging"]),
    (("startswith", "le", "advanced", "paging"), ["paging", "delta"]),
    (("deltatoken-latest",), ["delta"]),
    (("batch",), []),  # single requests are proven by the accepted GETs
    (("startswith", "ge", "le", "advanced", "deltatoken-latest", "batch"), ["paging", "delta"]),
])
def test_slower_rungs_are_probed_only_when_the_faster_ones_are_refused(refused: tuple[str, ...],
                                                                       also: list[str]) -> None:
    got, sent = probe(refused)
    assert sent == [*FIRST, *also]
    assert {n for n, s in got.items() if s.verdict == REFUSED and not s.derived} == set(refused)


def test_a_delegated_account_also_probes_sharepoint_rest_batch() -> None:
    got, sent = probe((), mode="password")
    assert sent == [*FIRST, "rest-batch"] and got["rest-batch"].verdict == ACCEPTED
    got, _ = probe(("rest-batch",), mode="password")
    assert got["rest-batch"].verdict == REFUSED and got["rest-single"].verdict == ACCEPTED
    row = judge("password", "fabrikam", got)
    assert row.status == WARN and "SharePoint REST writes: one SharePoint REST update per item (rest-batch " \
                                  "refused)" in row.detail
    assert "100 times the requests" in row.fix


def test_a_refused_slower_rung_is_named_without_moving_the_ladder() -> None:
    row = judge("secret", "contoso", seen(refused=("le",)))
    assert row.status == WARN and "directory read: UPN partitions by startsWith;" in row.detail
    assert row.fix == ("nothing to change: le refused too, which only a slower fallback of the directory read "
                       "would use")
