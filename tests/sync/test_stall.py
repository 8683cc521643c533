"""The stall watch with plain values and an injected clock: when it speaks, how often, when it alerts, what ends
it, and which text it picks (a slow loop's failure and its own fix, the presence error, what it waits for)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from sync.errors import NoFallbackError, RosterError
from sync.loops.state import AccountState, Targets
from sync.models import CycleResult
from sync.scheduler import _FailureTap
from sync.stall import Due, StallWatch, describe, duration, explain, hint_of, made_progress, stall_line


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def result(presences: int = 0, error: str | None = None, agents: int = 5) -> CycleResult:
    return CycleResult("contoso", datetime.now(UTC), agents=agents, valid=agents, resolved=agents,
                       presences=presences, error=error)


def lines_and_alerts(watch: StallWatch, clock: Clock, until: float, step: float) -> tuple[list[float], list[float]]:
    """Wake every ``step`` seconds (as the scheduler does) until ``until`` seconds after the start."""
    start, lines, alerts = clock.now, [], []
    while clock.now - start < until:
        clock.now += step
        due = watch.due()
        if due.log:
            lines.append(round(clock.now - start, 3))
        if due.alert:
            alerts.append(round(clock.now - start, 3))
    return lines, alerts


def test_the_first_line_at_three_intervals_then_one_a_minute_and_the_alert_once_at_five_minutes() -> None:
    clock = Clock()
    w = StallWatch(interval=5.0, clock=clock)
    clock.now += 14.9
    assert w.due() == Due(seconds=pytest.approx(14.9)) and not w.stalled
    clock.now = 1000.0
    lines, alerts = lines_and_alerts(w, clock, 700, 5.0)
    assert lines == [15, 75, 135, 195, 255, 315, 375, 435, 495, 555, 615, 675]
    assert alerts == [300] and w.stalled


def test_late_wake_ups_do_not_make_the_lines_drift_or_bunch_up() -> None:
    clock = Clock()
    w = StallWatch(interval=2.0, clock=clock, startup_grace=0)
    lines, _ = lines_and_alerts(w, clock, 200, 7.0)  # the scheduler wakes late: every 7 s
    assert lines == [7, 70, 133, 189]  # each at the first wake after 7 + 60 k: one a minute
    clock.now += 500  # a long gap (the machine slept): one line, then a minute again
    assert w.due().log and not w.due().log
    clock.now += 59
    assert not w.due().log
    clock.now += 1
    assert w.due().log


def test_the_periods_are_parameters() -> None:
    clock = Clock()
    w = StallWatch(interval=0.5, log_every=1.0, alert_after=2.0, clock=clock, startup_grace=0)
    lines, alerts = lines_and_alerts(w, clock, 4.0, 0.5)
    assert lines == [1.5, 2.5, 3.5] and alerts == [2.0]


def test_a_healthy_cold_start_has_15_s_before_it_is_a_stall_and_a_failure_ends_the_grace() -> None:
    clock = Clock()
    w = StallWatch(interval=1.0, clock=clock)  # a large tenant at --interval 1: 3 intervals are 3 s
    clock.now += 14.9
    assert not w.due().stalled  # the Agent list and the directory are still being read; nothing failed
    clock.now += 0.1
    assert w.due() == Due(True, True, False, pytest.approx(15.0))
    clock = Clock()
    w = StallWatch(interval=1.0, clock=clock)
    clock.now += 3.0
    w.failed("Agent list or directory refresh failed: HTTP 403")
    assert w.due().stalled and w.due().seconds == pytest.approx(3.0)  # something fails: 3 intervals, no grace
    clock = Clock()
    w = StallWatch(interval=1.0, clock=clock)
    clock.now += 3.0
    w.tick(result(presences=0, error="5 agent(s) stale: HTTP 503"))
    assert w.due().stalled  # a presence read that fails ends the grace too
    w.tick(result(presences=5))
    clock.now += 3.0
    assert w.due().stalled  # after the first presence read: 3 intervals
    w.started()  # the loops start again (after a login): a cold start once more
    clock.now += 3.0
    assert not w.due().stalled


def test_progress_ends_the_stall_and_starts_the_clock_again() -> None:
    clock = Clock()
    w = StallWatch(interval=1.0, clock=clock)
    clock.now += 400
    assert w.due() == Due(True, True, True, 400.0)
    clock.now += 1
    assert w.tick(result(presences=0, error="5 agent(s) stale: HTTP 503")) == (False, False)
    assert w.tick(result(presences=5)) == (True, True) and not w.stalled
    assert w.progress() is False  # nothing to end any more
    clock.now += 2
    assert not w.due().stalled
    clock.now += 1
    due = w.due()
    assert due.stalled and due.log and not due.alert and due.seconds == pytest.approx(3.0)
    clock.now += 300
    assert w.due().alert  # a new stall: its own alert
    w.started()  # the loops start again (after a login): a fresh clock
    assert not w.due().stalled


@pytest.mark.parametrize(("tick", "progress"), [
    (result(presences=5), True),
    (result(presences=3, error="2 agent(s) stale: HTTP 503"), True),  # some presence read: not a stall
    (result(presences=0, error="5 agent(s) stale: HTTP 503"), False),
    (result(presences=0, agents=7), False),  # items, but none resolves to a user: nothing read
    (result(presences=0, agents=0), True),  # an empty Agent list: nothing to read
    (result(presences=0, agents=0, error="boom"), False),
])
def test_progress_is_a_tick_that_read_presence_or_had_nothing_to_read(tick: CycleResult, progress: bool) -> None:
    assert made_progress(tick) is progress


DOCTOR = "Run `presence-sync doctor --account contoso`; the lines before this one name the failing request."


def test_the_text_is_the_failure_then_the_presence_error_then_what_the_account_waits_for() -> None:
    assert explain("contoso") == ("the Agent list or the directory has not produced any agent yet", DOCTOR)
    what, fix = explain("contoso", targets_ready=True, agents=7)
    assert what == "none of the 7 Agent-list item(s) resolves to a directory user"
    assert fix.startswith("See validation.csv") and "doctor --account contoso" in fix
    what, _ = explain("contoso", targets_ready=True, agents=7, complete=False)
    assert what.startswith("the directory is still being read")
    assert explain("contoso", targets_ready=True, agents=7, user_ids=7, presence_error="7 agent(s) stale: HTTP 503"
                   ) == ("presence cannot be read: 7 agent(s) stale: HTTP 503", DOCTOR)
    assert explain("contoso", failure="domains could not be read: HTTP 503.", presence_error="x") == (
        "domains could not be read: HTTP 503", DOCTOR)


def test_a_failure_that_carries_its_fix_says_it_as_what_to_do() -> None:
    exc = NoFallbackError("the tenant refused every shape of the Agent list (list route: HTTP 501)", status=501,
                          account_id="contoso", hint="Give account contoso a delegated login.",
                          request_id="r-1")
    what, fix = explain("contoso", failure=f"Agent list or directory refresh failed: {exc}", hint=exc.hint)
    assert fix == "Give account contoso a delegated login."
    assert what == ("Agent list or directory refresh failed: account 'contoso': the tenant refused every shape "
                    "of the Agent list (list route: HTTP 501) (request-id r-1)")
    assert explain("contoso", failure="x failed", hint="not in the text") == ("x failed", DOCTOR)


def test_the_fix_of_a_wrapped_error_is_found_where_it_was_raised() -> None:
    try:
        try:
            raise NoFallbackError("every shape refused", status=501, hint="Read the roster from a file.")
        except NoFallbackError as inner:
            raise RosterError(f"the Agent list could not be read: {inner}") from inner
    except RosterError as exc:
        what = f"Agent list or directory refresh failed: {exc}"
        assert hint_of(exc, what) == "Read the roster from a file."
        assert hint_of(exc, "a text without it") == ""
    assert hint_of(ValueError("x"), "x") == "" and hint_of(None, "x") == ""


def test_the_line_says_how_long_what_and_what_to_do() -> None:
    assert stall_line(75.4, "domains could not be read", DOCTOR) == (
        f"no presence read for 1 min 15 s: domains could not be read. To fix: {DOCTOR}")
    assert [duration(s) for s in (0.4, 59.9, 60, 3599, 3600, 7322)] == [
        "0 s", "59 s", "1 min 0 s", "59 min 59 s", "1 h 0 min", "2 h 2 min"]


def test_describe_reads_the_watch_and_the_account_state_and_the_tap_keeps_each_errors_fix() -> None:
    async def main() -> None:
        clock = Clock()
        state, watch = AccountState("contoso"), StallWatch(1.0, clock=clock)
        told: list[str] = []
        state.on_failure = _FailureTap({"contoso": watch}, "contoso", told.append)
        assert describe("contoso", watch, state)[0].startswith("the Agent list or the directory")
        state.publish_targets(Targets(agents=3))
        assert describe("contoso", watch, state)[0] == "none of the 3 Agent-list item(s) resolves to a directory user"
        watch.tick(result(presences=0, error="3 agent(s) stale: HTTP 503"))
        assert describe("contoso", watch, state) == ("presence cannot be read: 3 agent(s) stale: HTTP 503", DOCTOR)
        try:
            raise RosterError("the Agent list has no column 'UPN'", hint="Name the UPN column in AgentList.")
        except RosterError as exc:
            state.note_failure(f"Agent list or directory refresh failed (retried in 60 s): {exc}")
        assert describe("contoso", watch, state) == (
            "Agent list or directory refresh failed (retried in 60 s): the Agent list has no column 'UPN'",
            "Name the UPN column in AgentList.")
        state.note_failure("write-back failed: HTTP 429")  # not from inside an except block: no fix of its own
        assert describe("contoso", watch, state) == ("write-back failed: HTTP 429", DOCTOR)
        assert len(told) == 2 and state.failures[-1] == "write-back failed: HTTP 429"
        watch.progress()  # what failed before a presence read no longer says why presence stops
        assert describe("contoso", watch, state)[0].startswith("none of the 3")
    asyncio.run(main())
