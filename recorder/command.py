"""`bingx-recorder record`: its config keys, options built and checked, signals wired, recorder run.

Reads no file: cli.py reads the config file and merges the flags over it."""

from __future__ import annotations

import logging
import math
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backfill.arguments import parse_symbols
from books.tracker import SnapshotOptions
from exchange.errors import ExchangeError, FatalError
from recorder.connection import ConnectionOptions
from recorder.errors import ConfigError, TopicError
from recorder.process import SEAL_INTERVAL_S
from recorder.runner import Recorder, RecordOptions, check_symbols, tradable_symbols
from recorder.shards import Shard
from recorder.topics import check_channels
from storage.compact import Compactor
from storage.lake import Lake, lake_at

log = logging.getLogger(__name__)
COMPACT_EVERY_S = 600.0  # closed days are compacted within ~10 minutes of the --older-than hour

# BingX pings every ~5 s (BINGX_API §17): a shorter silence timeout drops quiet, healthy sockets
MIN_SILENCE_S = 6.0
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
    "api_key": str,  # record --account: read by cli.credentials, never a flag
    "api_secret": str,
    "credentials": dict,  # a [credentials] table holding the two above
    "heal": bool,
    "book_snapshots": str,
    "book_checkpoint": float,
    "book_tolerance": float,
    "shard": str,
}


@dataclass(frozen=True)
class Endpoints:
    data_dir: Path
    rest_url: str
    ws_url: str
    log_level: str = "WARNING"
    credentials: Any = field(default=None, repr=False)  # exchange.signing.Credentials for record --account
    lake: str = ""  # --lake: a path or s3://bucket/prefix; "" is <data-dir>/lake


def check_config(document: dict[str, Any], path: Path) -> dict[str, Any]:
    """Check a parsed record config's keys (dashes or underscores) and types; return them by KEYS name.

    A [record] table or top-level keys; ConfigError (one line naming the file) at the first problem."""
    document = document.get("record", document)
    config: dict[str, Any] = {}
    for raw_key, value in document.items():
        key = raw_key.replace("-", "_")
        if key not in KEYS:
            raise ConfigError(f"config {path}: unknown key {raw_key!r}; known: {', '.join(sorted(KEYS))}")
        if key in ("symbols", "channels") and isinstance(value, list):
            value = ",".join(map(str, value))
        wanted = KEYS[key]
        if (isinstance(value, bool) and wanted is not bool) or not isinstance(
            value, wanted if wanted is not float else (int, float)
        ):
            raise ConfigError(f"config {path}: {raw_key} must be a {wanted.__name__}, got {value!r}")
        config[key] = value
    return config


def options_from(
    merged: dict[str, Any], endpoints: Endpoints, account: bool = False
) -> tuple[RecordOptions, float | None]:
    """Build the recorder's options from the flags merged over the config file; raise one-line errors."""
    alone = account and not merged.get("symbols") and not merged.get("channels")  # no market topics
    if not alone and (not merged.get("symbols") or not merged.get("channels")):
        raise TopicError("record needs --symbols and --channels (as flags or in --config)")
    channels = [] if alone else check_channels(str(merged["channels"]).split(","))
    try:
        # the same names and hint as backfill and poll; no market topics when recording the account alone
        symbols = [] if alone else parse_symbols(str(merged["symbols"]))
    except ValueError as error:
        raise TopicError(str(error)) from None
    try:
        part = Shard.parse(str(merged["shard"])) if merged.get("shard") else Shard()
    except ValueError as error:
        raise TopicError(str(error)) from None
    if symbols and part.count > 1 and not part.select(symbols):
        raise TopicError(
            f"--shard {part.index}/{part.count} owns none of the {len(symbols)} symbols given "
            "(a symbol's shard is a stable hash of its name: recorder/shards.py); give more or use all"
        )
    connection = ConnectionOptions(
        url=endpoints.ws_url,
        silence_timeout_s=_bounded(merged, "silence_timeout", 15.0, MIN_SILENCE_S, 3600.0),
        subscribes_per_second=_bounded(merged, "subscribes_per_second", 8.0, 0.01, 1000.0),
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
        heal_rest_url=endpoints.rest_url if merged.get("heal", True) else None,
        book_snapshots=_book_snapshots(merged),
        shard=part,
        lake=endpoints.lake,
    )
    if not 0 < options.lake_interval_s <= 3600:
        raise TopicError(f"lake interval must be in (0, 3600] seconds, got {options.lake_interval_s:g}")
    if options.converter not in ("process", "thread"):
        raise TopicError(f"converter must be 'process' or 'thread', got {options.converter!r}")
    duration = merged.get("duration")
    if duration is not None and not (math.isfinite(duration) and duration > 0):
        raise TopicError(f"duration must be a number of seconds > 0, got {duration:g}")
    return options, None if duration is None else float(duration)


def _bounded(merged: dict[str, Any], key: str, default: float, low: float, high: float) -> float:
    """Read a float setting and check it lies in [low, high]; NaN and infinities are refused too."""
    value = float(merged.get(key, default))
    if not low <= value <= high:  # False for NaN as well
        name = key.replace("_", " ")
        raise TopicError(f"{name} must be in [{low:g}, {high:g}], got {value:g} (--{key.replace('_', '-')})")
    return value


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


def record(
    merged: dict[str, Any],
    endpoints: Endpoints,
    account: bool = False,
    observe: Callable[[Recorder, Any], Any] | None = None,
) -> None:
    """Run the recorder until SIGINT/SIGTERM or the duration; exit cleanly either way.

    `merged` is the flags over the config file (cli.record_values). `observe(recorder, compactor)` is
    called just before recording starts (the status file and metrics, service/watch.py); what it returns
    is stopped after the recorder's last seal."""
    from exchange.rest import RestClient

    options, duration = options_from(merged, endpoints, account)
    rest = RestClient(endpoints.rest_url, attempts=3)
    factory = account_factory(endpoints, options) if account else None
    if options.symbols is None:
        try:
            tradable_symbols(rest)
        except ExchangeError as error:
            raise TopicError(f"--symbols all needs the contract list: {error}") from error
    elif options.symbols:  # [] with --account alone
        try:
            check_symbols(options.symbols, rest)
        except FatalError:
            raise
        except ExchangeError as error:  # unreachable: BingX's 80015 refusal will be recorded instead
            log.warning("could not check symbols against contracts (%s); recording anyway", error)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    compactor = _compactor(lake_at(endpoints.data_dir, endpoints.lake), merged.get("compact_every"))
    recorder = Recorder(endpoints.data_dir, options, rest, account=factory)
    watching = observe(recorder, compactor) if observe is not None else None
    try:
        recorder.run(stop, duration)
    finally:
        if watching is not None:
            watching.stop()
        if compactor is not None:
            compactor.stop()


def account_factory(endpoints: Endpoints, options: RecordOptions) -> Any:
    """Check the credentials now (one line and exit 1 if BingX refuses them); return the stream's factory."""
    from exchange.signed import SignedClient, account_limiter
    from recorder.account import AccountStream
    from schemas.account import COMMISSION_RATES
    from storage.state import State

    if endpoints.credentials is None:
        raise ConfigError("record --account needs an API key and secret (BINGX_API_KEY / BINGX_API_SECRET)")
    client = SignedClient(endpoints.rest_url, endpoints.credentials, attempts=3, limiter=account_limiter())
    client.measure_offset()
    client.get(COMMISSION_RATES.rest_path or "")  # signed: a wrong key or secret fails here

    def build(journal: Any, receiver: Any, name: str) -> AccountStream:
        state = State(endpoints.data_dir / "state")
        lake = lake_at(endpoints.data_dir, endpoints.lake)
        return AccountStream(
            client, endpoints.ws_url, journal, state, lake, name, options.connection, receiver
        )

    return build


def _compactor(lake: Lake, every_s: float | None) -> Compactor | None:
    """Compaction of closed days beside the recorder (DESIGN.md: the file count must not pile up).

    Shards sharing a lake each run one; the lake's lease lets one work at a time (storage.lease)."""
    if every_s is not None and every_s <= 0:
        return None
    compactor = Compactor(lake, COMPACT_EVERY_S if every_s is None else every_s)
    compactor.start()
    return compactor
