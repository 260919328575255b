"""What `run` starts: one Part per child, its command line built from the config (pure, except that the
recorder's part writes its record --config file). No process is started here."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.config import ConfigError, ServiceConfig

RECORD_CONFIG = "state/service/record.toml"  # the recorder child's --config, rewritten before each start
# record keys that are flags, not record --config keys (recorder.command.KEYS): `account`; never written:
# the credentials, which reach the child in its environment only.
_NOT_IN_FILE = ("account", "credentials")


@dataclass(frozen=True)
class Part:
    """One child: a long-running one (every_s None, restarted with backoff) or a one-shot on a schedule."""

    name: str
    every_s: float | None
    argv: Callable[[ServiceConfig, float], list[str]]  # (current config, wall time in s) -> the command
    symbols: Callable[[ServiceConfig], str | None] = lambda config: None  # what SIGHUP may change


def parts(
    config: ServiceConfig, base: Sequence[str], data_dir: Path, supports: Callable[[str, str], bool]
) -> list[Part]:
    """Every child the config asks for, recorder first; ConfigError if this build lacks a needed flag."""
    found: list[Part] = []
    if config.record is not None:
        found.append(Part("record", None, _record(base, data_dir, supports), lambda c: c.symbols))
    names: list[str] = []
    for index, poll in enumerate(config.polls):
        name = _unique(f"poll {poll['name']}", names)
        found.append(Part(name, None, _poll(base, index, supports), _entry_symbols("polls", index)))
    for index, entry in enumerate(config.backfills):
        label = " ".join(filter(None, ("backfill", entry["dataset"], entry["interval"])))
        backfill = _backfill(base, index, supports)
        symbols = _entry_symbols("backfills", index)
        found.append(Part(_unique(label, names), entry["every"], backfill, symbols))
    if config.heal["every"] is not None:
        found.append(Part("heal", config.heal["every"], _heal(base, supports)))
    if config.compact["every"] is not None:
        found.append(Part("compact", config.compact["every"], _compact(base, supports)))
    _check_passed_on(config, [part.name.split()[0] for part in found], supports)
    return found


def _check_passed_on(
    config: ServiceConfig, commands: list[str], supports: Callable[[str, str], bool]
) -> None:
    """lake goes to every child, shard to the recorder: refuse them if this build has not got the flag."""
    for key, needed in (("lake", commands), ("shard", ["record"] if "record" in commands else [])):
        value = config.top[key]
        lacking = [c for c in dict.fromkeys(needed) if not (supports("", key) or supports(c, key))]
        if value is not None and lacking:
            raise ConfigError(
                f"config {config.path}: {key} = {value!r}: this build's `{lacking[0]}` has no --{key} yet "
                "(issue 16 items 4 and 5); remove the key"
            )


def base_argv(
    executable: str, config: ServiceConfig, settings: dict[str, str], supports: Callable[[str, str], bool]
) -> list[str]:
    """The global options every child gets: the config's values over the service's own flags."""
    top = config.top
    argv = [executable, "-m", "cli"]
    for key in ("data_dir", "rest_url", "ws_url", "log_level", "log_format"):
        value = top[key] if top[key] is not None else settings[key]
        argv += [f"--{key.replace('_', '-')}", str(value)]
    for key in ("lake", "shard"):  # a global option in this build: every child gets it
        if top[key] is not None and supports("", key):
            argv += [f"--{key}", top[key]]
    return argv


def child_env(config: ServiceConfig, environ: dict[str, str]) -> dict[str, str]:
    """The children's environment: the service's, plus the config's credentials unless already set."""
    env = dict(environ)
    for name, value in config.secrets.items():
        env.setdefault(f"BINGX_{name.upper()}", value)
    return env


def write_record_config(path: Path, values: dict[str, Any]) -> Path:
    """Write the [record] keys as a record --config file (temp + rename: a restart never reads half of it)."""
    lines = [
        f"{key} = {_toml(value)}"
        for key, value in values.items()
        if value is not None and key not in _NOT_IN_FILE
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    partial.write_text("\n".join(lines) + "\n")
    os.replace(partial, path)
    return path


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value))  # a JSON string is a TOML basic string (json.dumps never writes \/)


def _lake(config: ServiceConfig, command: str, supports: Callable[[str, str], bool]) -> list[str]:
    """--lake after the command, where this build has it as a command's option (not a global one)."""
    lake = config.top["lake"]
    return ["--lake", lake] if lake is not None and supports(command, "lake") else []


def _entry_symbols(table: str, index: int) -> Callable[[ServiceConfig], str | None]:
    def symbols(config: ServiceConfig) -> str | None:
        entries: tuple[dict[str, Any], ...] = getattr(config, table)
        return entries[index]["symbols"] if index < len(entries) else None

    return symbols


def _record(
    base: Sequence[str], data_dir: Path, supports: Callable[[str, str], bool]
) -> Callable[[ServiceConfig, float], list[str]]:
    def argv(config: ServiceConfig, now_s: float) -> list[str]:
        assert config.record is not None
        path = write_record_config(_data_dir(config, data_dir) / RECORD_CONFIG, config.record)
        # one owner each: under run, healing and compaction are the service's schedules
        args = [*base, "record", "--config", str(path), "--no-heal", "--compact-every", "0"]
        args += ["--account"] if config.record["account"] else []
        if config.top["shard"] is not None and supports("record", "shard"):
            args += ["--shard", config.top["shard"]]
        return args + _lake(config, "record", supports)

    return argv


def _poll(
    base: Sequence[str], index: int, supports: Callable[[str, str], bool]
) -> Callable[[ServiceConfig, float], list[str]]:
    def argv(config: ServiceConfig, now_s: float) -> list[str]:
        poll = config.polls[index]
        args = [*base, "poll", poll["name"], "--every", f"{poll['every']:g}"]
        args += ["--symbols", poll["symbols"]] if poll["symbols"] is not None else []
        return args + _lake(config, "poll", supports)

    return argv


def _backfill(
    base: Sequence[str], index: int, supports: Callable[[str, str], bool]
) -> Callable[[ServiceConfig, float], list[str]]:
    def argv(config: ServiceConfig, now_s: float) -> list[str]:
        entry = config.backfills[index]
        since_ms = int((now_s - entry["lookback"]) * 1000)
        args = [*base, "backfill", entry["dataset"], "--since", str(since_ms)]
        args += ["--symbols", entry["symbols"]] if entry["symbols"] is not None else []
        args += ["--interval", entry["interval"]] if entry["interval"] is not None else []
        return args + _lake(config, "backfill", supports)

    return argv


def _heal(
    base: Sequence[str], supports: Callable[[str, str], bool]
) -> Callable[[ServiceConfig, float], list[str]]:
    def argv(config: ServiceConfig, now_s: float) -> list[str]:
        since_ms = int((now_s - config.heal["lookback"]) * 1000)
        args = [*base, "heal", "--since", str(since_ms)]
        args += ["--datasets", config.heal["datasets"]] if config.heal["datasets"] is not None else []
        return args + _lake(config, "heal", supports)

    return argv


def _compact(
    base: Sequence[str], supports: Callable[[str, str], bool]
) -> Callable[[ServiceConfig, float], list[str]]:
    def argv(config: ServiceConfig, now_s: float) -> list[str]:
        older, grace = config.compact["older_than"], config.compact["grace"]
        args = [*base, "compact", "--older-than", f"{round(older)}s", "--grace", f"{grace:g}"]
        return args + _lake(config, "compact", supports)

    return argv


def _data_dir(config: ServiceConfig, default: Path) -> Path:
    return Path(config.top["data_dir"]) if config.top["data_dir"] is not None else default


def _unique(name: str, taken: list[str]) -> str:
    """Two schedules of the same kind get #2, #3: the state file and the logs tell them apart."""
    count = sum(1 for t in taken if t == name or t.startswith(f"{name} #"))
    taken.append(name)
    return name if count == 0 else f"{name} #{count + 1}"
