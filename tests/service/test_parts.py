"""The children's command lines built from a config: one owner for healing and compaction, schedules'
windows from the wall clock, credentials in the environment only, lake and shard passed on where they can."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from cli import _has_flag, read_run_config
from service.config import ConfigError, check
from service.parts import RECORD_CONFIG, base_argv, child_env, parts

ROOT = Path(__file__).parents[2]
SETTINGS = {
    "data_dir": "/d",
    "rest_url": "http://r",
    "ws_url": "ws://w",
    "log_level": "INFO",
    "log_format": "text",
}
NOW_S = 1_750_000_000.0


def _argvs(
    tmp_path: Path, text: str | None = None, supports: Callable[[str, str], bool] = _has_flag
) -> dict[str, list[str]]:
    example = ROOT / "deploy" / "bingx.toml"
    config = read_run_config(example) if text is None else check(tomllib.loads(text), tmp_path / "bingx.toml")
    base = base_argv("python", config, {**SETTINGS, "data_dir": str(tmp_path)}, supports)
    return {part.name: part.argv(config, NOW_S) for part in parts(config, base, tmp_path, supports)}


def test_the_recorder_runs_without_its_own_healing_and_compaction(tmp_path: Path) -> None:
    argvs = _argvs(tmp_path, '[record]\nsymbols = "all"\nchannels = ["trade"]\nlake_interval = 5.0\n')
    record = argvs["record"]
    assert record[:3] == ["python", "-m", "cli"] and "record" in record
    assert record[record.index("record") :] == [
        "record",
        "--config",
        str(tmp_path / RECORD_CONFIG),
        "--no-heal",
        "--compact-every",
        "0",
    ]
    written = tomllib.loads((tmp_path / RECORD_CONFIG).read_text())
    assert written == {"symbols": "all", "channels": "trade", "lake_interval": 5.0}
    assert set(argvs) == {"record", "heal", "compact"}, "heal and compact are the service's, on by default"


def test_every_child_gets_the_global_options_and_its_schedule_window(tmp_path: Path) -> None:
    argvs = _argvs(tmp_path)
    for argv in argvs.values():
        assert argv[3:13] == [
            "--data-dir",
            str(tmp_path),
            "--rest-url",
            "https://open-api.bingx.com",
            "--ws-url",
            "wss://open-api-swap.bingx.com/swap-market",
            "--log-level",
            "INFO",
            "--log-format",
            "json",
        ], argv
    tail = {name: argv[13:] for name, argv in argvs.items()}
    assert tail["poll premium-index"] == ["poll", "premium-index", "--every", "60"]
    assert tail["poll open-interest"][-2:] == ["--symbols", "BTC-USDT,ETH-USDT,SOL-USDT"]
    two_days_ago = str(int((NOW_S - 2 * 86400) * 1000))
    assert tail["backfill funding"] == [
        "backfill",
        "funding",
        "--since",
        two_days_ago,
        "--symbols",
        "BTC-USDT,ETH-USDT,SOL-USDT",
    ]
    assert tail["backfill klines 1m,1h"][-2:] == ["--interval", "1m,1h"]
    assert tail["heal"] == [
        "heal",
        "--since",
        str(int((NOW_S - 6 * 3600) * 1000)),
        "--datasets",
        "trades,klines,funding_rates,mark_klines",
    ]
    assert tail["compact"] == ["compact", "--older-than", "3600s", "--grace", "300"]


def test_credentials_reach_the_recorder_in_its_environment_only(tmp_path: Path) -> None:
    text = '[record]\nsymbols = ["BTC-USDT"]\nchannels = ["trade"]\naccount = true\n'
    text += '[record.credentials]\napi_key = "the-key"\napi_secret = "the-secret"\n'
    config = check(tomllib.loads(text), tmp_path / "bingx.toml")
    argvs = _argvs(tmp_path, text)
    assert "--account" in argvs["record"]
    assert "the-secret" not in " ".join(argvs["record"]) + (tmp_path / RECORD_CONFIG).read_text()
    env = child_env(config, {"PATH": "/bin"})
    assert env["BINGX_API_KEY"] == "the-key" and env["BINGX_API_SECRET"] == "the-secret"
    assert child_env(config, {"BINGX_API_SECRET": "from-env"})["BINGX_API_SECRET"] == "from-env"


def test_lake_and_shard_are_passed_on_as_this_build_takes_them(tmp_path: Path) -> None:
    text = 'lake = "s3://b/p"\nshard = "1/3"\n[record]\nsymbols = "all"\nchannels = ["trade"]\n'
    as_global = _argvs(tmp_path, text, lambda command, flag: command == "")
    assert all(argv[13:17] == ["--lake", "s3://b/p", "--shard", "1/3"] for argv in as_global.values())
    per_command = _argvs(tmp_path, text, lambda command, flag: command != "")
    assert per_command["record"][-4:] == ["--shard", "1/3", "--lake", "s3://b/p"]
    assert per_command["compact"][-2:] == ["--lake", "s3://b/p"]
    with pytest.raises(ConfigError, match="this build's `heal` has no --lake"):
        _argvs(tmp_path, text, lambda command, flag: command in ("record", "compact"))


def test_this_build_gives_every_child_the_lake_and_the_recorder_its_shard(tmp_path: Path) -> None:
    text = 'lake = "s3://b/p"\nshard = "1/3"\n[record]\nsymbols = "all"\nchannels = ["trade"]\n'
    argvs = _argvs(tmp_path, text)  # this build's own flags (cli._has_flag)
    assert set(argvs) == {"record", "heal", "compact"}
    for name, argv in argvs.items():
        assert argv[argv.index("--lake") + 1] == "s3://b/p", name
    assert argvs["record"][argvs["record"].index("--shard") + 1] == "1/3"
