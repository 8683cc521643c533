"""The presence model: deterministic, piecewise constant, agrees with its own transition log, lively."""

from __future__ import annotations

import random
import re
import statistics
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sync.emulator.model.fixtures import load_world
from sync.emulator.model.presence import STATES, PresenceModel
from sync.emulator.model.tenant import Tenant, User

TENANTS = Path(__file__).resolve().parents[3] / "sync" / "emulator" / "fixtures"

TUESDAY = datetime(2026, 3, 10, tzinfo=UTC)
SATURDAY = datetime(2026, 3, 14, tzinfo=UTC)
AVAILABILITIES = {"Available", "AvailableIdle", "Away", "BeRightBack", "Busy", "BusyIdle", "DoNotDisturb",
                  "Offline", "PresenceUnknown"}
ACTIVITIES = {"Available", "Away", "BeRightBack", "Busy", "DoNotDisturb", "InACall", "InAConferenceCall",
              "Inactive", "InAMeeting", "Offline", "OffWork", "OutOfOffice", "PresenceUnknown", "Presenting"}


@pytest.fixture(scope="module")
def contoso() -> Tenant:
    return load_world(TENANTS).tenants["6f1c2f4e-3b1a-4c8e-9d7a-1a2b3c4d5e6f"]


def active(t: Tenant) -> list[User]:
    return [u for u in t.users.values() if u.teams_licensed and u.account_enabled]


def pair(p: dict[str, object]) -> tuple[object, object]:
    return p["availability"], p["activity"]


def test_same_seed_same_answers_other_seed_other_answers(contoso: Tenant) -> None:
    users = active(contoso)[:40]
    a, b, c = PresenceModel(7), PresenceModel(7), PresenceModel(8)
    times = [TUESDAY + timedelta(minutes=m) for m in range(0, 24 * 60, 37)]
    for at in times:
        for u in users:
            assert a.presence(contoso, u, at) == b.presence(contoso, u, at)
    day = (TUESDAY, TUESDAY + timedelta(days=1))
    assert a.transitions(contoso, users, *day) == b.transitions(contoso, users, *day)
    assert a.transitions(contoso, users, *day) != c.transitions(contoso, users, *day)


def test_transitions_agree_with_presence(contoso: Tenant) -> None:
    users = active(contoso)[:25]
    since, until = TUESDAY, TUESDAY + timedelta(days=1)
    changes = PresenceModel(5).transitions(contoso, users, since, until)
    assert changes and [c["at"] for c in changes] == sorted(c["at"] for c in changes)
    by_id = {u.id: u for u in users}
    cached = PresenceModel(5)  # asked in time order: exercises the segment cache
    for ch in changes:
        user = by_id[ch["user_id"]]
        assert ch["upn"] == user.user_principal_name
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ch["at"])
        at = datetime.fromisoformat(ch["at"].replace("Z", "+00:00"))
        before = cached.presence(contoso, user, at - timedelta(milliseconds=1))
        after = cached.presence(contoso, user, at)
        assert pair(before) == (ch["from"]["availability"], ch["from"]["activity"])
        assert pair(after) == (ch["to"]["availability"], ch["to"]["activity"])
        assert after["sequenceNumber"] == ch["sequenceNumber"] > before["sequenceNumber"]
        assert ch["from"] != ch["to"]
        fresh = PresenceModel(5).presence(contoso, user, at)  # and without any cache
        assert fresh == after


def test_piecewise_constant_between_transitions(contoso: Tenant) -> None:
    users = active(contoso)[40:55]
    model = PresenceModel(11)
    since, until = TUESDAY, TUESDAY + timedelta(days=1)
    changes = model.transitions(contoso, users, since, until)
    rng = random.Random(1)
    for u in users:
        edges = [since] + [datetime.fromisoformat(c["at"].replace("Z", "+00:00"))
                           for c in changes if c["user_id"] == u.id] + [until]
        for lo, hi in zip(edges, edges[1:], strict=False):
            samples = sorted(lo + (hi - lo) * rng.random() for _ in range(4))
            seen = {model.presence(contoso, u, s)["sequenceNumber"] for s in samples}
            assert len(seen) == 1, (u.user_principal_name, lo, hi)


def test_objects_have_graph_shape(contoso: Tenant) -> None:
    model = PresenceModel(1)
    seen: set[tuple[object, object]] = set()
    for minute in range(0, 5 * 24 * 60, 20):
        at = TUESDAY + timedelta(minutes=minute)
        for u in contoso.users.values():
            p = model.presence(contoso, u, at)
            assert set(p) == {"id", "availability", "activity", "statusMessage", "outOfOfficeSettings",
                              "sequenceNumber"}
            assert p["id"] == u.id
            assert p["availability"] in AVAILABILITIES and p["activity"] in ACTIVITIES
            assert re.fullmatch(r"C\d{15}", p["sequenceNumber"])
            oof = p["outOfOfficeSettings"]
            assert set(oof) == {"isOutOfOffice", "message"}
            assert oof["isOutOfOffice"] == (p["activity"] == "OutOfOffice")
            if oof["isOutOfOffice"]:
                assert oof["message"]
            if p["statusMessage"] is not None:
                assert p["statusMessage"]["message"]["contentType"] == "text"
                assert p["statusMessage"]["message"]["content"]
            seen.add(pair(p))
    for wanted in [("Busy", "InACall"), ("Busy", "InAMeeting"), ("Busy", "InAConferenceCall"),
                   ("DoNotDisturb", "Presenting"), ("DoNotDisturb", "DoNotDisturb"), ("Away", "Away"),
                   ("BeRightBack", "BeRightBack"), ("AvailableIdle", "Inactive"), ("Offline", "OffWork"),
                   ("Offline", "OutOfOffice"), ("Available", "Available"), ("PresenceUnknown", "PresenceUnknown")]:
        assert wanted in seen, wanted


def test_unlicensed_unknown_and_disabled_offline_for_good(contoso: Tenant) -> None:
    model = PresenceModel(3)
    unlicensed = [u for u in contoso.users.values() if not u.teams_licensed]
    disabled = [u for u in contoso.users.values() if u.teams_licensed and not u.account_enabled]
    assert unlicensed and disabled
    for at in (TUESDAY + timedelta(hours=h) for h in range(0, 48, 5)):
        for u in unlicensed:
            assert pair(model.presence(contoso, u, at)) == ("PresenceUnknown", "PresenceUnknown")
        for u in disabled:
            assert pair(model.presence(contoso, u, at)) == ("Offline", "Offline")
    week = (TUESDAY, TUESDAY + timedelta(days=7))
    assert model.transitions(contoso, unlicensed + disabled, *week) == []


def test_change_rate_over_a_working_day(contoso: Tenant) -> None:
    """Documented: a typical agent changes every 5-15 minutes while working; nothing at weekends."""
    model = PresenceModel(2)
    users = active(contoso)
    intervals: list[float] = []
    counts: list[int] = []
    for u in users:
        off = timedelta(minutes=u.utc_offset_minutes)
        # the user's own Tuesday, without the midnight ends (where a holiday may begin or end)
        local_day = (TUESDAY - off + timedelta(seconds=1), TUESDAY - off + timedelta(hours=23, minutes=59))
        ch = model.transitions(contoso, [u], *local_day)
        if len(ch) < 3 or any(c["to"]["activity"] == "OutOfOffice" for c in ch):
            continue
        first = datetime.fromisoformat(ch[0]["at"].replace("Z", "+00:00"))
        last = datetime.fromisoformat(ch[-1]["at"].replace("Z", "+00:00"))
        assert ch[0]["from"]["activity"] == "OffWork" and ch[-1]["to"]["activity"] == "OffWork"
        assert 6 <= (last - first).total_seconds() / 3600 <= 11  # signed in for a working day
        counts.append(len(ch))
        intervals.append((last - first).total_seconds() / 60 / (len(ch) - 1))
    assert len(counts) >= 0.9 * len(users) * 0.9  # most are at work on a Tuesday
    mean = statistics.mean(intervals)
    print(f"\n{len(counts)} agents at work: mean interval {mean:.1f} min, "
          f"changes/day mean {statistics.mean(counts):.0f} (min {min(counts)}, max {max(counts)})")
    assert 5 <= mean <= 15
    assert sum(5 <= i <= 15 for i in intervals) >= 0.9 * len(intervals)
    weekend = [c for c in model.transitions(contoso, users, SATURDAY + timedelta(hours=14),
                                            SATURDAY + timedelta(hours=34))]
    assert weekend == []  # Saturday 14:00 UTC to Sunday 10:00 UTC is weekend everywhere


def test_out_of_office_days_exist_and_are_whole_days(contoso: Tenant) -> None:
    model = PresenceModel(4)
    users = active(contoso)
    oof_days = 0
    weekdays = 0
    for day in range(28):
        start = datetime(2026, 3, 2, tzinfo=UTC) + timedelta(days=day)
        if start.weekday() >= 5:
            continue
        for u in users:
            weekdays += 1
            noon = start + timedelta(hours=12) - timedelta(minutes=u.utc_offset_minutes)
            p = model.presence(contoso, u, noon)
            if p["outOfOfficeSettings"]["isOutOfOffice"]:
                oof_days += 1
                assert p["activity"] == "OutOfOffice" and p["availability"] in ("Offline", "Available")
                late = model.presence(contoso, u, noon + timedelta(hours=11, minutes=30))
                assert late["outOfOfficeSettings"]["isOutOfOffice"]
    share = oof_days / weekdays
    print(f"\nout of office: {oof_days} of {weekdays} user-weekdays ({share:.1%})")
    assert 0.01 <= share <= 0.08


def test_sequence_number_survives_midnight(contoso: Tenant) -> None:
    """A state that carries over midnight (or a weekend) keeps its sequenceNumber: nothing changed."""
    model = PresenceModel(6)
    london = [u for u in active(contoso) if u.utc_offset_minutes == 0]
    checked = 0
    for u in london:
        before = model.presence(contoso, u, TUESDAY - timedelta(minutes=1))
        after = model.presence(contoso, u, TUESDAY + timedelta(minutes=1))
        saturday = model.presence(contoso, u, datetime(2026, 3, 7, 12, tzinfo=UTC))
        monday = model.presence(contoso, u, datetime(2026, 3, 9, 5, tzinfo=UTC))
        if pair(before) == pair(after) == ("Offline", "OffWork"):
            assert before["sequenceNumber"] == after["sequenceNumber"]
            checked += 1
        if pair(monday) == pair(saturday) == ("Offline", "OffWork"):
            assert monday["sequenceNumber"] == saturday["sequenceNumber"]  # one state since Friday evening
            assert monday["sequenceNumber"] <= f"C{int(datetime(2026, 3, 7, tzinfo=UTC).timestamp() * 1000):015d}"
            checked += 1
    assert checked >= len(london)


def test_speed(contoso: Tenant) -> None:
    users = list(contoso.users.values())
    model = PresenceModel(9)
    at = TUESDAY + timedelta(hours=15)
    t0 = time.perf_counter()
    for u in users:
        model.presence(contoso, u, at)
    cold = (time.perf_counter() - t0) / len(users)
    rounds = 200
    t0 = time.perf_counter()
    for _ in range(rounds):
        for u in users:
            model.presence(contoso, u, at)
    warm = (time.perf_counter() - t0) / (rounds * len(users))
    print(f"\npresence(): first call {cold * 1e6:.1f} us/user, cached {warm * 1e6:.2f} us/user "
          f"({1 / warm:,.0f} users/s)")
    assert model.presence(contoso, users[0], at) is model.presence(contoso, users[0], at)
    assert len(STATES) == 16


def test_out_of_office_transitions_agree_with_presence(contoso: Tenant) -> None:
    """Holidays, sick days and check-ins begin and end exactly where transitions() says."""
    users = active(contoso)
    since = datetime(2026, 3, 2, tzinfo=UTC)
    changes = [c for c in PresenceModel(2).transitions(contoso, users, since, since + timedelta(days=28))
               if "OutOfOffice" in (c["from"]["activity"], c["to"]["activity"])]
    assert len(changes) >= 20
    assert any(c["to"] == {"availability": "Available", "activity": "OutOfOffice"} for c in changes)
    for ch in changes:
        user = contoso.users[ch["user_id"]]
        at = datetime.fromisoformat(ch["at"].replace("Z", "+00:00"))
        after = PresenceModel(2).presence(contoso, user, at)
        before = PresenceModel(2).presence(contoso, user, at - timedelta(milliseconds=1))
        assert (after["activity"], after["sequenceNumber"]) == (ch["to"]["activity"], ch["sequenceNumber"])
        assert before["activity"] == ch["from"]["activity"]
