"""Latency per kind of call: the spec parser, the log-normal draw, routing by path, and one HTTPS check."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import httpx
import pytest

from sync.emulator.faults.latency import LatencySpec, kind_of, parse_model, parse_spec


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def test_specs_old_and_new_forms() -> None:
    assert parse_spec("fixed:50") == LatencySpec("fixed", 50, 50)
    assert parse_spec("uniform:10,200") == LatencySpec("uniform", 10, 200)
    assert parse_spec("exp:40") == LatencySpec("exp", 40, 400)
    assert parse_spec("80") == LatencySpec("fixed", 80, 80)
    assert parse_spec("150:400") == LatencySpec("lognormal", 150, 400)
    assert parse_spec("150:150") == LatencySpec("fixed", 150, 150)
    for bad in ("fixed", "uniform:5", "400:150", "0:10", "x:y", "-5", "gauss:1,2"):
        with pytest.raises(ValueError):
            parse_spec(bad)


def test_lognormal_median_and_p99_match_the_spec() -> None:
    spec = parse_spec("150:400")
    rng = random.Random(11)
    draws = [spec.draw_ms(rng) for _ in range(20000)]
    assert 140 <= _quantile(draws, 0.5) <= 160
    assert 360 <= _quantile(draws, 0.99) <= 445
    assert max(draws) <= 4000  # capped at 10x p99


def test_lognormal_draws_are_capped_at_ten_times_p99() -> None:
    spec = parse_spec("1:1.5")
    assert spec.cap == 15
    wide = LatencySpec("lognormal", 1, 1000)  # sigma ~ 3: the tail reaches the cap often
    rng = random.Random(2)
    assert max(wide.draw_ms(rng) for _ in range(5000)) == wide.cap


def test_model_per_kind_with_other_as_fallback() -> None:
    model = parse_model("presence=150:400,other=80,sites=uniform:10,20")
    assert model is not None
    assert model.spec_for("presence") == LatencySpec("lognormal", 150, 400)
    assert model.spec_for("sites") == LatencySpec("uniform", 10, 20)
    assert model.spec_for("directory") == LatencySpec("fixed", 80, 80)
    assert model.spec_for("token") == LatencySpec("fixed", 80, 80)
    only = parse_model("presence=300")
    assert only is not None and only.spec_for("directory") is None and only.spec_for("other") is None
    bare = parse_model("uniform:10,20")
    assert bare is not None and all(bare.spec_for(k) == LatencySpec("uniform", 10, 20)
                                    for k in ("presence", "token", "other"))
    assert parse_model(None) is None and parse_model("off") is None
    for bad in ("presense=10", "presence=10,presence=20", "presence="):
        with pytest.raises(ValueError):
            parse_model(bad)


@pytest.mark.parametrize(("path", "kind"), [
    ("/v1.0/communications/getPresencesByUserId", "presence"),
    ("/v1.0/communications/presences/abc", "presence"),
    ("/v1.0/users/abc/presence", "presence"),
    ("/v1.0/me/presence", "presence"),
    ("/v1.0/users", "directory"),
    ("/v1.0/users/delta", "directory"),
    ("/v1.0/users('a@b.com')", "directory"),
    ("/v1.0/me", "directory"),
    ("/v1.0/domains/contoso.com", "directory"),
    ("/v1.0/$batch", "batch"),
    ("/v1.0/sites/contoso.sharepoint.com:/sites/ucc", "sites"),
    ("/sites/ucc/_api/web/lists", "sites"),
    ("/contoso.com/oauth2/v2.0/token", "token"),
    ("/contoso.com/oauth2/v2.0/devicecode", "token"),
    ("/contoso.com/v2.0/.well-known/openid-configuration", "token"),
    ("/common/discovery/instance", "token"),
    ("/v1.0/organization", "other"),
    ("/v1.0/usersx", "other"),
])
def test_kind_of_path(path: str, kind: str) -> None:
    assert kind_of(path) == kind


@pytest.fixture()
def presence_latency(http: httpx.Client) -> Iterator[dict[str, object]]:
    r = http.post("/_emulator/faults", json={"replace": True, "latency": "presence=300"})
    assert r.status_code == 200, r.text
    yield r.json()
    http.post("/_emulator/reset")


def test_presence_latency_delays_presence_only(graph: httpx.Client,
                                               presence_latency: dict[str, object]) -> None:
    assert presence_latency["latency_model"] == {"presence": {"dist": "fixed", "ms": 300.0}}
    ids = [u["id"] for u in graph.get("/v1.0/users", params={"$top": "3"}).json()["value"]]
    t0 = time.monotonic()
    r = graph.post("/v1.0/communications/getPresencesByUserId", json={"ids": ids})
    presence_s = time.monotonic() - t0
    assert r.status_code == 200, r.text
    t0 = time.monotonic()
    d = graph.get("/v1.0/domains")
    domains_s = time.monotonic() - t0
    assert d.status_code == 200
    assert presence_s >= 0.25
    assert domains_s < 0.2
    shown = graph.get("/_emulator/faults").json()
    assert shown["latency"] == "presence=300"  # the raw spec stays as given
