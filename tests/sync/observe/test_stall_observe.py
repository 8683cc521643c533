"""A stalled account as the monitor shows it, with plain values: /readyz's entry, the gauges on /metrics, and the
needs-a-human alert (opened once with the ERROR line's what and what to do, kept open by ticks that read nothing,
resolved by a presence read)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from metrics_support import samples, value

from sync.config import AccountConfig
from sync.models import CycleResult
from sync.observe.incidents import Alert, IncidentBook
from sync.observe.metrics import JobMetrics
from sync.observe.monitor import Monitor

FIX = "Run `presence-sync doctor --account contoso`; the lines before this one name the failing request."
WHAT = "presence cannot be read: 5 agent(s) stale: HTTP 503"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC).timestamp()

    def __call__(self) -> float:
        return self.now


def setup(tmp_path: Path) -> tuple[Monitor, list[Alert], Clock]:
    clock = Clock()
    sent: list[Alert] = []
    book = IncidentBook(tmp_path / "alerts.json", clock=lambda: datetime.fromtimestamp(clock(), UTC))
    acc = AccountConfig(id="contoso", client_id="c", tenant_id="t", auth="secret")
    return Monitor([acc], book, interval=1.0, sink=sent.append, clock=clock), sent, clock


def tick(presences: int, error: str | None = None, agents: int = 5) -> CycleResult:
    return CycleResult("contoso", datetime.now(UTC), agents=agents, resolved=agents, presences=presences,
                       error=error)


def test_a_stall_is_on_readyz_and_metrics_and_alerts_once_with_the_same_text(tmp_path: Path) -> None:
    mon, sent, clock = setup(tmp_path)
    mon.cycle_done("contoso", tick(5))
    mon.presence_read("contoso")
    clock.now += 3
    mon.stalled("contoso", 3.0, WHAT, FIX)
    ready, body = mon.readiness()
    entry = body["accounts"]["contoso"]
    assert not ready and entry["ready"] is False and entry["stalled"] is True
    assert entry["reason"] == f"no presence read for 3 s: {WHAT}. To fix: {FIX}"
    assert not sent  # the alert waits for 5 minutes
    found = samples(JobMetrics(mon).exposition().decode())
    assert value(found, "presence_sync_account_stalled", account="contoso") == 1.0
    assert value(found, "presence_sync_presence_read_age_seconds", account="contoso") > 0
    clock.now += 297
    mon.stalled("contoso", 300.0, WHAT, FIX, alert=True)
    mon.stalled("contoso", 301.0, WHAT, FIX, alert=True)  # told again: still one alert
    assert [(a.kind, a.state) for a in sent] == [("needs_human", "open")]
    assert sent[0].message == f"no presence read for 5 min 0 s: {WHAT}." and sent[0].action == FIX
    assert mon.readiness()[1]["accounts"]["contoso"]["reason"].startswith("no presence read for 5 min 1 s: ")


def test_a_tick_that_reads_nothing_keeps_the_alert_and_a_presence_read_resolves_it(tmp_path: Path) -> None:
    mon, sent, clock = setup(tmp_path)
    clock.now += 300
    what = "none of the 5 Agent-list item(s) resolves to a directory user"
    mon.stalled("contoso", 300.0, what, FIX, alert=True)
    mon.cycle_done("contoso", tick(0))  # no error, nothing read: the account is still stalled
    assert "needs_human" in mon.book.open_kinds("contoso") and len(sent) == 1
    assert mon.readiness()[1]["accounts"]["contoso"]["stalled"] is True
    mon.presence_read("contoso")
    mon.cycle_done("contoso", tick(5))
    assert [(a.kind, a.state) for a in sent] == [("needs_human", "open"), ("needs_human", "resolved")]
    ready, body = mon.readiness()
    assert ready and "stalled" not in body["accounts"]["contoso"]
    found = samples(JobMetrics(mon).exposition().decode())
    assert value(found, "presence_sync_account_stalled", account="contoso") == 0.0
    assert value(found, "presence_sync_presence_read_age_seconds", account="contoso") < 5


def test_a_presence_read_with_failing_chunks_ends_the_stall_and_its_alert(tmp_path: Path) -> None:
    """Some chunks still fail (the tick has an error): presence is read, so the stall's alert is resolved;
    the failing chunks keep their own account_failing incident."""
    mon, sent, clock = setup(tmp_path)
    clock.now += 300
    mon.stalled("contoso", 300.0, WHAT, FIX, alert=True)
    mon.presence_read("contoso")
    mon.cycle_done("contoso", tick(3, error="2 agent(s) stale: HTTP 503"))
    assert [(a.kind, a.state) for a in sent] == [("needs_human", "open"), ("needs_human", "resolved")]
    assert "stalled" not in mon.readiness()[1]["accounts"]["contoso"]


def test_loops_that_ended_take_the_stall_off_readyz_without_resolving(tmp_path: Path) -> None:
    mon, sent, clock = setup(tmp_path)
    clock.now += 300
    mon.stalled("contoso", 300.0, WHAT, FIX, alert=True)
    mon.account_failed("contoso", "the store failed")
    mon.stall_over("contoso")
    entry = mon.readiness()[1]["accounts"]["contoso"]
    assert "stalled" not in entry and entry["reason"].endswith("stopped: the store failed")
    assert "needs_human" in mon.book.open_kinds("contoso")
