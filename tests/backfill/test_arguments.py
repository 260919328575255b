"""The backfill and poll values (times, windows, symbols, intervals); every refusal is one line saying what
to do."""

from __future__ import annotations

import pytest

from backfill.arguments import parse_intervals, parse_symbols, parse_time, parse_window

JUNE_1_MS = 1_717_200_000_000  # 2024-06-01T00:00:00Z


@pytest.mark.parametrize("text", [None, "all", " ALL ", "All"])
def test_no_symbols_or_all_means_every_contract(text: str | None) -> None:
    assert parse_symbols(text) is None


def test_symbols_are_trimmed_and_deduplicated_in_the_order_given() -> None:
    assert parse_symbols(" ETH-USDT,BTC-USDT , ETH-USDT,,SOL-USDC ") == ["ETH-USDT", "BTC-USDT", "SOL-USDC"]


@pytest.mark.parametrize(
    "text", ["btc-usdt", "BTCUSDT", "BTC-USD", "BTC-USDT;ETH-USDT", ",", " ", "BTC-USDT,eth"]
)
def test_a_malformed_symbol_list_is_one_line_that_shows_the_expected_form(text: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_symbols(text)
    assert str(raised.value) == f"--symbols {text!r}: expected names like BTC-USDT,ETH-USDT or 'all'"


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2024-06-01", JUNE_1_MS),
        ("2024-06-01T12:30", JUNE_1_MS + 45_000_000),
        ("2024-06-01T12:30:15", JUNE_1_MS + 45_015_000),
        ("2024-06-01T02:00+02:00", JUNE_1_MS),
        (" 1717200000000 ", JUNE_1_MS),
    ],
)
def test_a_time_is_a_utc_date_a_utc_moment_or_epoch_milliseconds(text: str, ms: int) -> None:
    assert parse_time(text, "--since") == ms


def test_no_time_is_none() -> None:
    assert parse_time(None, "--until") is None


def test_an_unreadable_time_names_its_option_and_the_forms_accepted() -> None:
    with pytest.raises(ValueError) as raised:
        parse_time("june", "--until")
    assert str(raised.value) == "--until 'june': expected YYYY-MM-DD or epoch milliseconds"


def test_epoch_seconds_are_refused_as_older_than_any_contract() -> None:
    with pytest.raises(ValueError) as raised:
        parse_time("1717200000", "--since")
    assert str(raised.value) == (
        "--since '1717200000' is before 2010-01-01, older than any BingX contract: "
        "expected YYYY-MM-DD or epoch milliseconds (not seconds)"
    )


def test_a_window_is_read_and_either_end_may_be_open() -> None:
    assert parse_window("2024-06-01", "2024-06-02") == (JUNE_1_MS, JUNE_1_MS + 86_400_000)
    assert parse_window(None, "2024-06-01") == (None, JUNE_1_MS)
    assert parse_window("2024-06-01", None) == (JUNE_1_MS, None)


@pytest.mark.parametrize("until", ["2024-06-01", "2024-05-31"])
def test_a_window_that_does_not_move_forward_is_refused(until: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_window("2024-06-01", until)
    assert str(raised.value) == f"--since 2024-06-01 is not before --until {until}"


def test_bar_series_default_to_one_minute_and_intervals_are_deduplicated() -> None:
    assert parse_intervals(None, True, "klines") == ("1m",)
    assert parse_intervals("1h, 1m,1h", True, "klines") == ("1h", "1m")


def test_an_unknown_interval_is_named_with_the_choices() -> None:
    with pytest.raises(ValueError) as raised:
        parse_intervals("1m,7m", True, "klines")
    assert (
        str(raised.value)
        == "unknown interval 7m: choose from 1m, 3m, 5m, 15m, 30m, 1h, 2h, 4h, 6h, 8h, 12h, 1d, 3d, 1w, 1M"
    )


def test_an_interval_for_a_series_without_bars_is_refused() -> None:
    assert parse_intervals(None, False, "funding_rates") == ()
    with pytest.raises(ValueError) as raised:
        parse_intervals("1m", False, "funding_rates")
    assert str(raised.value) == "--interval does not apply to funding_rates (only klines and mark-klines)"
