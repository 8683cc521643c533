"""The stall watch with plain values and an injected clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sync.config import AccountConfig
from sync.loops.state import AccountState, Targets
from sync.models import CycleResult
from sync.observe.incidents import IncidentBook
from sync.observe.monitor import Monitor
from sync.stall import StallWatch, describe, made_progress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_first_line_at_three_intervals_then_one_a_minute_and_the_alert_at_five_minutes() -> None:
    clock = Clock()
    w = StallWatch(interval=2.0, clock=clock)
    clock.now += 5.9
    assert w.due() == (False, False)
    clock.now += 0.1
    assert w.due() == (True, False) and w.stalled
    clock.now += 30
    assert w.due() == (False, False)
    clock.now += 30
    assert w.due() == (True, False)
    clock.now += 240
    assert w.due() == (True, True)  # 306 s stalled
    clock.now += 60
    assert w.due() == (True, False)  # the alert once
    assert w.progress() is True and not w.stalled
    clock.now += 5
    assert w.due() == (False, False)


def test_progress_is_a_tick_that_read_presence_or_had_nothing_to_read() -> None:
    t = datetime.now(UTC)
    assert made_progress(CycleResult("a", t, resolved=5, presences=5))
    assert made_progress(CycleResult("a", t, resolved=0, presences=0))
    assert not made_progress(CycleResult("a", t, resolved=5, presences=0, error="HTTP 503"))
    assert not made_progress(CycleResult("a", t, resolved=0, note="directory still loading: agents resolved so far"))


def test_what_is_failing_comes_from_the_account_state() -> None:
    async def main() -> None:
        state = AccountState("contoso")
        assert "has not produced any agent" in describe("contoso", state)[0]
        state.publish_targets(Targets(agents=7))
        assert "none of the 7" in describe("contoso", state)[0]
        state.failures = ["the Agent list could not be read: refused"]
        what, fix = describe("contoso", state)
        assert what.endswith("refused") and "doctor --account contoso" in fix
    asyncio.run(main())


def test_the_monitor_shows_a_stall_and_a_good_tick_clears_it(tmp_path: Path) -> None:
    acc = AccountConfig(id="contoso", client_id="c", tenant_id="t", auth="secret")
    sent: list = []
    mon = Monitor([acc], IncidentBook(tmp_path / "alerts.json"), interval=1.0, sink=sent.append)
    mon.stalled("contoso", "no presence read for 6 s: refused. To fix: run doctor", alert=False)
    ready, body = mon.readiness()
    assert not ready and body["accounts"]["contoso"]["stalled"] is True and not sent
    mon.stalled("contoso", "no presence read for 300 s: refused. To fix: run doctor", alert=True)
    assert [a.kind for a in sent] == ["needs_human"]
    mon.cycle_done("contoso", CycleResult("contoso", datetime.now(UTC), resolved=1, presences=1))
    ready, body = mon.readiness()
    assert ready and "stalled" not in body["accounts"]["contoso"]
