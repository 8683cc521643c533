"""Progress of long work in log lines (not a terminal): the directory read and a large write-back round."""

from __future__ import annotations

import logging

import pytest

from sync.loops.roster import LogProgress


def test_a_large_write_back_round_says_how_far_it_has_come(caplog: pytest.LogCaptureFixture) -> None:
    p = LogProgress(every=0.0)
    with caplog.at_level(logging.INFO, logger="sync.loops.roster"):
        p.fill("contoso", 0, 1000)  # the first call only starts the clock
        p.fill("contoso", 400, 1000)
        p.fill_done("contoso", 1000, 1000, 3.0)
        p.fill("contoso", 0, 800)  # a later round starts afresh
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["account contoso: write-back: 400 of 1000 items written (40%)"]


def test_progress_lines_are_spaced_by_every(caplog: pytest.LogCaptureFixture) -> None:
    p = LogProgress(every=3600.0)
    with caplog.at_level(logging.INFO, logger="sync.loops.roster"):
        for n in range(0, 1000, 50):
            p.fill("contoso", n, 1000)
    assert caplog.records == []  # an hour has not passed
