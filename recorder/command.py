"""`bingx-recorder record`: flags and config file merged, arguments checked, signals wired, recorder run."""

from __future__ import annotations

import logging
import signal
import threading
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from books.tracker import SnapshotOptions
from exchange.errors import ExchangeError, FatalError
from recorder.connection import ConnectionOptions
from recorder.process import SEAL_INTERVAL_S
from recorder.runner import Recorder, RecordOptions, check_symbols, tradable_symbols
from recorder.topics import TopicError, check_channels

log = logging.getLogger(__name__)

KEYS = {
    "symbols": str,
    "channels": str,
    "duration": float,
    "topics_per_connection": int,
    "silence_timeout": float,
    "subscribes_per_second": float,
    "converter": str,
    "refresh": float,
    "journal_archive": str,
    "lake_interval": float,
    "book_snapshots": str,
    "book_checkpoint": float,
    "book_tolerance": float,
}


class ConfigError(ValueError):
    """The config file cannot be used; the message is one line naming the file and the problem."""


@dataclass(frozen=True)
class Endpoints:
    data_dir: Path
    rest_url: str
    ws_url: str
    log_level: str = "WARNING"


def load_config(path: Path | None) -> dict[str, Any]:
    """Read a TOML config with the record command's keys (dashes or underscores); check names and types."""
    if path is None:
        return {}
    try:
        document = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"config {path}: cannot read it: {error}") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config {path}: not valid TOML: {error}") from error
    document = document.get("record", document)  # a [record] table or top-level keys
    config: dict[str, Any] = {}
    for raw_key, value in document.items():
        key = raw_key.replace("-", "_")
        if key not in KEYS:
            raise ConfigError(f"config {path}: unknown key {raw_key!r}; known: {', '.join(sorted(KEYS))}")
        if key in ("symbols", "channels") and isinstance(value, list):
            value = ",".join(map(str, value))
        wanted = KEYS[key]
        if isinstance(value, bool) or not isinstance(value, wanted if wanted is not float else (int, float)):
            raise ConfigError(f"config {path}: {raw_key} must be a {wanted.__name__}, got {value!r}")
        config[key] = value
    return config


def options_from(flags: dict[str, Any], endpoints: Endpoints) -> tuple[RecordOptions, float | None]:
    """Merge flags over the config file and build the recorder's options; raise one-line errors."""
    merged = {**load_config(flags.pop("config", None)), **{k: v for k, v in flags.items() if v is not None}}
    if not merged.get("symbols") or not merged.get("channels"):
        raise TopicError("record needs --symbols and --channels (as flags or in --config)")
    channels = check_channels(str(merged["channels"]).split(","))
    text = str(merged["symbols"]).strip()
    symbols = None if text.lower() == "all" else [s.strip() for s in text.split(",") if s.strip()]
    silence = float(merged.get("silence_timeout", 15.0))
    connection = ConnectionOptions(
        url=endpoints.ws_url,
        silence_timeout_s=silence,
        subscribes_per_second=float(merged.get("subscribes_per_second", 8.0)),
    )
    options = RecordOptions(
        channels=channels,
        symbols=symbols,
        connection=connection,
        topics_per_connection=int(merged.get("topics_per_connection", 200)),
        refresh_s=float(merged.get("refresh", 900.0)),
        converter=str(merged.get("converter", "process")),
        log_level=endpoints.log_level,
        journal_archive=Path(merged["journal_archive"]) if merged.get("journal_archive") else None,
        lake_interval_s=float(merged.get("lake_interval", SEAL_INTERVAL_S)),
        book_snapshots=_book_snapshots(merged),
    )
    if not 0 < options.lake_interval_s <= 3600:
        raise TopicError(f"lake interval must be in (0, 3600] seconds, got {options.lake_interval_s:g}")
    if options.converter not in ("process", "thread"):
        raise TopicError(f"converter must be 'process' or 'thread', got {options.converter!r}")
    duration = merged.get("duration")
    return options, None if duration is None else float(duration)


def _book_snapshots(merged: dict[str, Any]) -> SnapshotOptions | None:
    """--book-snapshots LEVELS@INTERVALms (off unless given), --book-checkpoint MIN, --book-tolerance MS."""
    text = merged.get("book_snapshots")
    tolerance = merged.get("book_tolerance")
    if tolerance is not None and not 0 < float(tolerance) <= 3_600_000:
        raise TopicError(f"book tolerance must be in (0, 3600000] ms, got {tolerance}")
    if text is None or str(text).lower() == "off":
        if tolerance is None:
            return None
        return SnapshotOptions(levels=0, interval_ms=0, checkpoint_ms=0, tolerance_ms=int(tolerance))
    try:
        return SnapshotOptions.parse(
            str(text),
            float(merged.get("book_checkpoint", 5.0)),
            None if tolerance is None else int(tolerance),
        )
    except ValueError as error:
        raise TopicError(str(error)) from None


def record(flags: dict[str, Any], endpoints: Endpoints) -> None:
    """Run the recorder until SIGINT/SIGTERM or the duration; exit cleanly either way."""
    from exchange.rest import RestClient

    options, duration = options_from(flags, endpoints)
    rest = RestClient(endpoints.rest_url, attempts=3)
    if options.symbols is None:
        try:
            tradable_symbols(rest)
        except ExchangeError as error:
            raise TopicError(f"--symbols all needs the contract list: {error}") from error
    else:
        try:
            check_symbols(options.symbols, rest)
        except FatalError:
            raise
        except ExchangeError as error:  # unreachable: BingX's 80015 refusal will be recorded instead
            log.warning("could not check symbols against contracts (%s); recording anyway", error)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    Recorder(endpoints.data_dir, options, rest).run(stop, duration)
