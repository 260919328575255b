"""Bad input to record, backfill and poll: one line and exit 1 (or click's usage error), never a traceback,
and nothing started (issue 11 items 8 and 9)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cli import USER_ERRORS, main
from recorder.command import Endpoints, options_from
from recorder.errors import TopicError
from simulator import Simulator

SYMBOLS = ["BTC-USDT", "ETH-USDT"]
RECORD = ["--symbols", "BTC-USDT", "--channels", "trade", "--duration", "2"]


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(symbols=SYMBOLS, seed=3, ping_interval_s=0.5, trades_per_second=0.02) as simulator:
        yield simulator


def _invoke(sim: Simulator, data_dir: Path | str, *args: str) -> str:
    """Run the CLI; assert it failed cleanly with exactly one `Error:` line; return that line."""
    urls = ["--data-dir", str(data_dir), "--ws-url", sim.ws_url, "--rest-url", str(sim.rest_url)]
    result = CliRunner().invoke(main, [*urls, *args])
    assert result.exit_code in (1, 2), result.output
    assert isinstance(result.exception, SystemExit), repr(result.exception)  # not a traceback
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    if result.exit_code == 1:
        assert result.output.count("\n") == 1, result.output
    return errors[0]


def _under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "a-file").write_text("")
    return tmp_path / "a-file" / "data"


COMMANDS = [
    ["record", *RECORD],
    ["backfill", "klines", "--symbols", "BTC-USDT", "--since", "2024-06-01", "--until", "2024-06-02"],
    ["poll", "prices"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: args[0])
def test_a_data_dir_under_a_file_is_one_line(sim: Simulator, tmp_path: Path, args: list[str]) -> None:
    line = _invoke(sim, _under_a_file(tmp_path), *args)
    assert str(_under_a_file(tmp_path)) in line


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: args[0])
def test_a_data_dir_under_proc_is_one_line(sim: Simulator, args: list[str]) -> None:
    line = _invoke(sim, "/proc/bingx-recorder-test/data", *args)
    assert "/proc/bingx-recorder-test/data" in line


def test_subscribes_per_second_zero_in_the_config_is_one_line(sim: Simulator, tmp_path: Path) -> None:
    config = tmp_path / "record.toml"
    config.write_text('symbols = "BTC-USDT"\nchannels = ["trade"]\nduration = 2\nsubscribes_per_second = 0\n')
    line = _invoke(sim, tmp_path / "data", "record", "--config", str(config))
    assert "subscribes_per_second" in line or "subscribes per second" in line
    assert not (tmp_path / "data" / "journal").exists()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--silence-timeout", "0"], ["silence"]),
        (["--silence-timeout", "1"], ["silence"]),
        (["--symbols", ","], ["--symbols"]),
        (["--symbols", "btc-usdt"], ["expected names like BTC-USDT"]),
        (["--duration", "0"], ["duration"]),
        (["--duration", "-5"], ["duration"]),
    ],
)
def test_record_refuses_nonsense_before_starting(
    sim: Simulator, tmp_path: Path, args: list[str], words: list[str]
) -> None:
    line = _invoke(sim, tmp_path, "record", *RECORD, *args)  # later flags win over RECORD's
    for word in words:
        assert word in line
    assert not (tmp_path / "journal").exists()


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        ({"duration": float("nan")}, ["duration"]),
        ({"duration": float("inf")}, ["duration"]),
        ({"silence_timeout": float("nan")}, ["silence"]),
        ({"symbols": " , "}, ["--symbols"]),
    ],
)
def test_record_options_refuse_what_no_flag_parser_catches(
    flags: dict[str, object], words: list[str]
) -> None:
    merged = {"symbols": "BTC-USDT", "channels": "trade", **flags}
    with pytest.raises(TopicError) as caught:
        options_from(merged, Endpoints(Path("data"), "http://127.0.0.1:9", "ws://127.0.0.1:9"))
    for word in words:
        assert word in str(caught.value)


def test_record_counts_a_symbol_given_twice_once() -> None:
    flags = {"symbols": "BTC-USDT,ETH-USDT,BTC-USDT", "channels": "trade,trade"}
    options, _ = options_from(flags, Endpoints(Path("data"), "http://127.0.0.1:9", "ws://127.0.0.1:9"))
    assert options.symbols == ["BTC-USDT", "ETH-USDT"]
    assert list(options.channels) == ["trade"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--workers", "0"], ["--workers"]),
        (["--since", "0"], ["--since", "2010"]),
        (["--since", "1717200000"], ["--since", "milliseconds"]),  # epoch seconds, not ms
        (["--symbols", ","], ["--symbols"]),
    ],
)
def test_backfill_refuses_nonsense(sim: Simulator, tmp_path: Path, args: list[str], words: list[str]) -> None:
    base = ["backfill", "klines", "--symbols", "BTC-USDT"]
    line = _invoke(sim, tmp_path, *base, *args)
    for word in words:
        assert word in line
    assert not (tmp_path / "lake").exists()
    assert not sim.rest.ledger.for_path("/openApi/swap/v3/quote/klines")  # nothing was asked for


def test_poll_count_without_every_is_refused(sim: Simulator, tmp_path: Path) -> None:
    line = _invoke(sim, tmp_path, "poll", "prices", "--count", "3")
    assert "--count" in line and "--every" in line
    assert not (tmp_path / "lake").exists()


@pytest.mark.parametrize("error", USER_ERRORS, ids=lambda kind: kind.__name__)
def test_every_error_of_the_table_is_one_line_and_exit_1_and_a_bug_keeps_its_traceback(
    error: type[Exception],
) -> None:
    @main.command(name="raise-for-test")
    @click.option("--bug", is_flag=True)
    def raising(bug: bool) -> None:
        raise KeyError("a bug") if bug else error("what went wrong\nand its detail")

    try:
        result = CliRunner().invoke(main, ["raise-for-test"])
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert result.output == "Error: what went wrong and its detail\n"
        bug = CliRunner().invoke(main, ["raise-for-test", "--bug"])
        assert isinstance(bug.exception, KeyError)  # not turned into a message: a traceback
    finally:
        del main.commands["raise-for-test"]
