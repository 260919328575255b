"""`run --config`: a bad config is one line naming the key, the value and what is allowed, and exit 1;
unknown keys are refused at every level; deploy/bingx.toml is valid and shows every key."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main, read_run_config
from service.config import KEYS, ConfigError, check, parse_duration

ROOT = Path(__file__).parents[2]
EXAMPLE = ROOT / "deploy" / "bingx.toml"
GOOD = """
[record]
symbols = ["BTC-USDT"]
channels = ["trade"]
"""


def _run(tmp_path: Path, text: str) -> tuple[int, str]:
    config = tmp_path / "bingx.toml"
    config.write_text(text)
    result = CliRunner().invoke(main, ["--data-dir", str(tmp_path / "data"), "run", "--config", str(config)])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('log_format = "yaml"\n' + GOOD, "log_format = 'yaml': expected text, json"),
        ('metrics = "9464"\n' + GOOD, "metrics = '9464': expected HOST:PORT"),
        ('shard = "2/2"\n' + GOOD, "shard = '2/2': expected i/n with 0 <= i < n"),
        (
            'stop_timeout = "4 seconds"\n' + GOOD,
            "stop_timeout = '4 seconds': expected a duration such as 90s",
        ),
        ("stop_timeout = 4\n" + GOOD, "stop_timeout = 4: expected a duration such as 90s"),
        ('rest_url = "ftp://x"\n' + GOOD, "rest_url = 'ftp://x': expected an http(s):// URL"),
        (GOOD + "topics_per_connection = 1.5\n", "record.topics_per_connection = 1.5: expected 1..200"),
        (GOOD + 'account = "yes"\n', "record.account = 'yes': expected true, false"),
        (
            GOOD + '[[poll]]\nname = "weather"\nevery = "5s"\n',
            "poll[0].name = 'weather': expected contracts,",
        ),
        (
            GOOD + '[[poll]]\nname = "tickers"\nevery = "often"\n',
            "poll[0].every = 'often': expected a duration",
        ),
        (GOOD + '[[poll]]\nname = "tickers"\n', "[poll[0]] needs every"),
        (GOOD + '[[backfill]]\ndataset = "klines"\ninterval = "7m"\nevery = "1h"\n', "backfill[0].interval"),
        (
            GOOD + '[[backfill]]\ndataset = "funding"\ninterval = "1m"\nevery = "1h"\n',
            "funding has no interval",
        ),
        (GOOD + '[heal]\nevery = "sometimes"\n', "heal.every = 'sometimes': expected a duration such as 90s"),
        (GOOD + "[compact]\ngrace = -1\n", "compact.grace = -1: expected a duration"),
        ("record = 5\n", "record = 5: expected a [record] table"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_key_the_value_and_what_is_allowed(
    tmp_path: Path, text: str, expected: str
) -> None:
    code, output = _run(tmp_path, text)
    assert code == 1, output
    assert expected in output, output
    assert len(output.strip().splitlines()) == 1, output
    assert not (tmp_path / "data").exists(), "nothing may be created before the config is checked"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('colour = "blue"\n' + GOOD, "unknown key 'colour'; known: "),
        (GOOD + "colour = 1\n", "unknown key 'colour' in [record]; known: "),
        (
            GOOD + '[[poll]]\nname = "tickers"\nevery = "5s"\ncolour = 1\n',
            "unknown key 'colour' in [poll[0]]",
        ),
        (GOOD + '[[backfill]]\ndataset = "klines"\nevery = "1h"\ncolour = 1\n', "in [backfill[0]]"),
        (GOOD + "[heal]\ncolour = 1\n", "unknown key 'colour' in [heal]; known: datasets, every, lookback"),
        (
            GOOD + "[compact]\ncolour = 1\n",
            "unknown key 'colour' in [compact]; known: every, grace, older_than",
        ),
        (GOOD + "[record.credentials]\ncolour = 1\n", "unknown key 'colour' in [record.credentials]"),
        (GOOD + "heal = true\n", "unknown key 'heal' in [record] (healing under run is the [heal] table's)"),
        (GOOD + "duration = 60\n", "unknown key 'duration' in [record] (run stops on SIGTERM/SIGINT)"),
    ],
)
def test_an_unknown_key_is_refused_at_every_level(tmp_path: Path, text: str, expected: str) -> None:
    code, output = _run(tmp_path, text)
    assert code == 1 and expected in output, output
    assert len(output.strip().splitlines()) == 1, output


def test_record_keys_are_checked_by_record_itself(tmp_path: Path) -> None:
    code, output = _run(tmp_path, '[record]\nsymbols = ["BTC-USDT"]\nchannels = ["weather"]\n')
    assert code == 1 and "[record] unknown channel 'weather'" in output, output
    code, output = _run(tmp_path, GOOD + "silence_timeout = 2.0\n")
    assert code == 1 and "silence timeout must be in [6, 3600], got 2" in output, output
    code, output = _run(tmp_path, GOOD.replace('symbols = ["BTC-USDT"]', 'symbols = ["btc"]'))
    assert code == 1 and "record.symbols = ['btc']: expected \"all\" or a list" in output, output


def test_a_secret_in_a_bad_config_is_never_shown(tmp_path: Path) -> None:
    code, output = _run(tmp_path, GOOD + "api_secret = 12345678\n")
    assert code == 1 and "record.api_secret = ***: expected a string" in output, output
    assert "12345678" not in output


def test_an_unreadable_config_is_one_line(tmp_path: Path) -> None:
    code, output = _run(tmp_path, "[record\n")
    assert code == 1 and "not valid TOML" in output and len(output.strip().splitlines()) == 1, output
    result = CliRunner().invoke(main, ["run", "--config", str(tmp_path / "missing.toml")])
    assert result.exit_code == 1 and "cannot read it" in result.output, result.output


def test_off_turns_healing_and_compaction_off() -> None:
    text = GOOD + '[heal]\nevery = "off"\n[compact]\nevery = "off"\n'
    config = check(tomllib.loads(text), Path("bingx.toml"))
    assert config.heal["every"] is None and config.compact["every"] is None


def test_the_example_config_is_valid() -> None:
    config = read_run_config(EXAMPLE)
    assert config.record is not None and config.record["symbols"] == "BTC-USDT,ETH-USDT,SOL-USDT"
    assert [p["name"] for p in config.polls] == ["premium-index", "open-interest"]
    assert [(b["dataset"], b["every"]) for b in config.backfills] == [
        ("funding", 28800.0),
        ("klines", 3600.0),
    ]
    assert config.backfills[0]["symbols"] == config.record["symbols"], "a backfill defaults to record.symbols"
    assert config.heal["every"] == 300.0 and config.compact["older_than"] == 3600.0


def test_the_example_config_shows_every_key() -> None:
    text = EXAMPLE.read_text()
    shown = set()
    section = ""
    for line in text.splitlines():
        if header := re.match(r"\s*\[\[?([a-z_.]+)\]\]?", line):
            section = header[1]
        elif key := re.match(r"\s*#?\s*([a-z_]+)\s*=", line):
            shown.add(f"{section}.{key[1]}" if section else key[1])
    missing = [k.name for k in KEYS if k.name not in shown]
    assert not missing, f"deploy/bingx.toml lacks {missing}"
    for table in ("record", "poll", "backfill", "heal", "compact"):
        assert table in tomllib.loads(text), table


def test_the_readme_config_is_valid() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Running it for weeks: `run --config`", 1)[1]
    block = section.split("```toml\n", 1)[1].split("```", 1)[0]
    config = check(tomllib.loads(block), Path("README.md"))
    assert config.record is not None and config.polls and config.backfills
    assert config.heal["every"] == 300.0 and config.compact["every"] == 600.0


def test_durations_are_a_number_and_one_unit() -> None:
    assert [parse_duration(t) for t in ("90s", "15m", "8h", "2d", "1.5h", "0s")] == [
        90.0,
        900.0,
        28800.0,
        172800.0,
        5400.0,
        0.0,
    ]
    for bad in ("90", "1h30m", "-1s", "s", "1w"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_run_help_has_a_worked_example() -> None:
    result = CliRunner().invoke(main, ["run", "--help"])
    assert result.exit_code == 0 and "bingx-recorder run --config deploy/bingx.toml" in result.output


def test_the_config_error_class_is_one_line() -> None:
    with pytest.raises(ConfigError) as raised:
        read_run_config(Path("/nonexistent/bingx.toml"))
    assert "\n" not in str(raised.value)


def test_a_second_run_on_one_data_dir_is_refused(tmp_path: Path) -> None:
    from service.state import service_lock

    (tmp_path / "data").mkdir()
    with service_lock(tmp_path / "data"):
        code, output = _run(tmp_path, GOOD)
    assert code == 1 and "is in use by another `run` (pid " in output, output
    assert len(output.strip().splitlines()) == 1, output
