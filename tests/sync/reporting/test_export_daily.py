"""The daily summary's arithmetic with plain values: a state lasts until the next transition, cut at UTC
midnight, at the export range and at the account's last cycle; the hour-of-day mix uses the same stretches."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from sync.reporting.timeline import daily_summary, hour_of_day_mix, intervals, split_periods

DAY = datetime(2026, 11, 27, tzinfo=UTC)


def at(hours: float) -> datetime:
    return DAY + timedelta(hours=hours)


def transitions(*rows: tuple[str, str, float, str]) -> pd.DataFrame:
    """(account, user, hours after DAY, availability) -> the columns the store's transitions come back with."""
    return pd.DataFrame({
        "account_id": [r[0] for r in rows], "upn": [f"{r[1]}@contoso.com" for r in rows],
        "user_id": [f"id-{r[1]}" for r in rows], "from_availability": [""] * len(rows),
        "from_activity": [""] * len(rows), "to_availability": [r[3] for r in rows],
        "to_activity": [r[3] for r in rows],
        "changed_at": pd.to_datetime([at(r[2]) for r in rows], utc=True),
    })


def summary(df: pd.DataFrame, start: datetime | None, end: datetime, **known: datetime) -> list[dict[str, object]]:
    table = daily_summary(intervals(df, start, end, known or None))
    return table.to_dict("records")  # type: ignore[no-any-return]


def test_a_state_lasts_until_the_next_transition_and_days_are_cut_at_utc_midnight() -> None:
    df = transitions(("contoso", "ann", 22, "Available"), ("contoso", "ann", 25, "Busy"))
    rows = summary(df, None, at(30))
    assert rows == [
        {"account_id": "contoso", "upn": "ann@contoso.com", "user_id": "id-ann", "date_utc": "2026-11-27",
         "Available": 7200, "Busy": 0, "observed_s": 7200},
        {"account_id": "contoso", "upn": "ann@contoso.com", "user_id": "id-ann", "date_utc": "2026-11-28",
         "Available": 3600, "Busy": 5 * 3600, "observed_s": 6 * 3600},
    ]


def test_the_range_clips_both_ends_and_the_baseline_gives_the_state_at_the_start() -> None:
    # Away since the day before the range (the baseline row), Busy from 10:00, range 08:00-12:00.
    df = transitions(("contoso", "bob", -5, "Away"), ("contoso", "bob", 10, "Busy"))
    rows = summary(df, at(8), at(12))
    assert [(r["date_utc"], r["Away"], r["Busy"], r["observed_s"]) for r in rows] == [
        ("2026-11-27", 7200, 7200, 4 * 3600)]


def test_time_before_the_first_observation_counts_nowhere() -> None:
    df = transitions(("contoso", "cy", 12, "Offline"))
    rows = summary(df, at(0), at(24))
    assert [(r["Offline"], r["observed_s"]) for r in rows] == [(12 * 3600, 12 * 3600)]


def test_the_last_state_ends_with_the_accounts_last_cycle() -> None:
    df = transitions(("contoso", "dee", 1, "Available"), ("fabrikam", "eve", 1, "Busy"))
    rows = summary(df, None, at(24), contoso=at(3))  # contoso's job stopped at 03:00; fabrikam kept running
    assert {(r["account_id"], r["observed_s"]) for r in rows} == {("contoso", 2 * 3600), ("fabrikam", 23 * 3600)}


def test_agents_and_accounts_are_kept_apart_and_availabilities_in_graphs_order() -> None:
    df = transitions(("contoso", "a", 0, "Offline"), ("contoso", "b", 0, "Available"), ("contoso", "a", 1, "Away"),
                     ("fabrikam", "a", 0, "DoNotDisturb"))
    table = daily_summary(intervals(df, None, at(2)))
    assert list(table.columns) == ["account_id", "upn", "user_id", "date_utc", "Available", "DoNotDisturb",
                                   "Away", "Offline", "observed_s"]
    got = {(r["account_id"], r["user_id"]): (r["Available"], r["DoNotDisturb"], r["Away"], r["Offline"])
           for r in table.to_dict("records")}
    assert got == {("contoso", "id-a"): (0, 0, 3600, 3600), ("contoso", "id-b"): (7200, 0, 0, 0),
                   ("fabrikam", "id-a"): (0, 7200, 0, 0)}


def test_a_state_spanning_several_days_gives_every_day_its_86400_seconds() -> None:
    df = transitions(("contoso", "f", 12, "Away"))
    rows = summary(df, None, at(12 + 72))
    assert [(r["date_utc"], r["observed_s"]) for r in rows] == [
        ("2026-11-27", 43200), ("2026-11-28", 86400), ("2026-11-29", 86400), ("2026-11-30", 43200)]


def test_seconds_are_rounded_and_empty_input_gives_an_empty_table() -> None:
    df = transitions(("contoso", "g", 0, "Busy"))
    df.loc[0, "changed_at"] = pd.Timestamp(at(0) + timedelta(milliseconds=400))
    assert summary(df, None, at(1))[0]["Busy"] == 3600  # 3599.6 s
    empty = daily_summary(intervals(transitions(), None, at(1)))
    assert empty.empty and "observed_s" in empty.columns


def test_split_periods_at_hours_and_the_hour_of_day_mix() -> None:
    df = transitions(("contoso", "h", 0.5, "Available"), ("contoso", "h", 2.25, "Busy"))
    spans = intervals(df, None, at(3))
    pieces = split_periods(spans, "h")
    assert list(pieces["seconds"]) == [1800.0, 3600.0, 900.0, 2700.0]
    assert sum(pieces["seconds"]) == 2.5 * 3600
    mix = hour_of_day_mix(spans)
    assert list(mix.index) == list(range(24))
    assert mix.loc[0, "Available"] == 0.5 and mix.loc[2, "Available"] == 0.25 and mix.loc[2, "Busy"] == 0.75
    assert mix.loc[5].sum() == 0
