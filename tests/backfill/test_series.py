"""Where a backfill window ends (closed bars only, a settle delay, --until), and how series are named."""

from __future__ import annotations

import pytest

from backfill.series import INTERVAL_MS, SERIES, series_named, spacing_ms, step_ms, window_end

NOON_MS = 1_717_243_200_000  # 2024-06-01T12:00:00Z
MINUTE_MS = 60_000
KLINES, FUNDING = SERIES["klines"], SERIES["funding"]


def test_a_one_minute_window_ends_after_the_last_bar_closed_at_least_5_seconds_ago() -> None:
    end = window_end(KLINES, "1m", NOON_MS + 30_000, None)
    assert end == NOON_MS - 35_000 + 1
    assert NOON_MS - MINUTE_MS < end <= NOON_MS  # the 11:59 bar (closed at 12:00) is in, the 12:00 bar is not


def test_a_bar_closed_less_than_the_settle_delay_ago_is_left_for_the_next_run() -> None:
    end = window_end(KLINES, "1m", NOON_MS + 3_000, None)
    assert end == NOON_MS - 62_000 + 1
    assert NOON_MS - 2 * MINUTE_MS < end <= NOON_MS - MINUTE_MS  # the 11:59 bar closed only 3 s ago


def test_an_hourly_window_keeps_only_hours_that_have_closed() -> None:
    end = window_end(KLINES, "1h", NOON_MS + 10 * MINUTE_MS, None)
    assert end == NOON_MS + 10 * MINUTE_MS - 5_000 - INTERVAL_MS["1h"] + 1
    assert NOON_MS - INTERVAL_MS["1h"] < end <= NOON_MS


def test_a_monthly_window_ends_at_the_start_of_the_current_utc_month() -> None:
    june_1 = 1_717_200_000_000
    may_1 = 1_714_521_600_000
    assert window_end(KLINES, "1M", june_1 + 14 * 86_400_000, None) == june_1
    assert window_end(KLINES, "1M", june_1 + 3_000, None) == may_1  # 5 s of settle reach back into May


def test_funding_settlements_are_asked_for_a_minute_after_they_happen() -> None:
    assert window_end(FUNDING, None, NOON_MS, None) == NOON_MS - MINUTE_MS


def test_until_ends_the_window_earlier_but_never_later() -> None:
    assert window_end(KLINES, "1m", NOON_MS, NOON_MS - 3_600_000) == NOON_MS - 3_600_000
    assert window_end(KLINES, "1m", NOON_MS, NOON_MS + 3_600_000) == NOON_MS - 65_000 + 1
    assert window_end(FUNDING, None, NOON_MS, NOON_MS - 1) == NOON_MS - MINUTE_MS


@pytest.mark.parametrize(
    ("name", "series"),
    [
        ("klines", "klines"),
        ("funding", "funding"),
        ("funding_rates", "funding"),
        ("mark_klines", "mark-klines"),
    ],
)
def test_a_series_is_found_by_its_dataset_name_or_its_alias(name: str, series: str) -> None:
    assert series_named(name) is SERIES[series]


def test_a_dataset_that_is_not_a_history_series_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        series_named("tickers")
    with pytest.raises(KeyError):
        series_named("candles")


def test_bar_series_have_an_interval_and_trades_are_paged_by_id() -> None:
    assert {name: (s.has_interval, s.by_id) for name, s in SERIES.items()} == {
        "klines": (True, False),
        "mark-klines": (True, False),
        "funding": (False, False),
        "trades": (False, True),
    }


def test_steps_and_spacings_follow_the_interval_or_the_series() -> None:
    assert (step_ms(KLINES, "15m"), spacing_ms(KLINES, "15m")) == (900_000, 900_000)
    assert (step_ms(FUNDING, None), spacing_ms(FUNDING, None)) == (1, 3_600_000)
