"""The `run` config: every key in one table (KEYS), a parsed document's validation into a ServiceConfig.

Every refusal is one line naming the file, the key, the value and what is allowed. No file is read here
(cli.py reads it and hands `check` the document) and no process is started.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backfill.account import ACCOUNT_SNAPSHOTS
from backfill.poll import SNAPSHOTS
from backfill.series import SERIES
from recorder import command
from recorder.errors import ConfigError
from schemas.dataset import INTERVALS
from service.values import CHECKS, parse_duration


@dataclass(frozen=True)
class Key:
    """One config key: where it lives, how it is checked, its default, what is allowed, what it is for."""

    name: str  # "metrics", "record.channels", "poll.every" ([[poll]] entries), ...
    kind: str  # a key of CHECKS
    default: Any
    allowed: str
    help: str


_DURATION = "a duration such as 90s, 15m, 8h or 2d"
_RECORD_HELP = {  # the keys record --config reads (recorder.command.KEYS): their types come from there
    "symbols": ('"all" or a list of contracts, e.g. ["BTC-USDT", "ETH-USDT"]', "Contracts recorded."),
    "channels": ('a list of channels, e.g. ["trade", "kline_1m"]', "Topic suffixes recorded."),
    "topics_per_connection": ("1..200", "At most this many topics per socket [200]."),
    "silence_timeout": ("seconds in [6, 3600]", "Silence before a socket counts as dead [15]."),
    "subscribes_per_second": ("a number in [0.01, 1000]", "Subscription pacing per socket [8]."),
    "converter": ("process, thread", "Where journal -> Parquet runs [process]."),
    "refresh": ("seconds", 'How often symbols = "all" re-reads the contract list [900].'),
    "journal_archive": ("a folder", "Move converted journal segments there instead of deleting them."),
    "lake_interval": ("seconds in (0, 3600]", "Seconds between lake writes [30]."),
    "book_snapshots": ("LEVELS@INTERVALms or off", "Write book_snapshots while recording incrDepth [off]."),
    "book_checkpoint": ("minutes", "Minutes between full-depth book checkpoints [5]."),
    "book_tolerance": ("ms in (0, 3600000]", "Book vs depth<N> disagreement tolerated [5000]."),
    "api_key": ("a string", "For account: the BingX API key (BINGX_API_KEY wins); never logged."),
    "api_secret": ("a string", "For account: the BingX API secret (BINGX_API_SECRET wins); never logged."),
}
_KINDS = {str: "str", int: "int", float: "float", bool: "bool"}
_RECORD_KINDS = {"symbols": "symbols", "channels": "list", "api_key": "secret", "api_secret": "secret"}
# record keys `run` owns itself: healing is the [heal] schedule's; a service runs until stopped.
_OWNED = {
    "heal": "healing under run is the [heal] table's",
    "duration": "run stops on SIGTERM/SIGINT",
    "shard": "the top-level shard key sets it",
}
assert set(_RECORD_HELP) | set(_OWNED) | {"credentials"} == set(command.KEYS), "record's keys changed"

KEYS: tuple[Key, ...] = (
    Key("data_dir", "str", None, "a folder", "Where journal/, lake/ and state/ live [--data-dir]."),
    Key(
        "rest_url",
        "http_url",
        None,
        "an http(s):// URL",
        "BingX REST [--rest-url]; the simulator's for tests.",
    ),
    Key("ws_url", "ws_url", None, "a ws(s):// URL", "BingX WebSocket [--ws-url]."),
    Key(
        "log_level",
        "choice:DEBUG,INFO,WARNING,ERROR",
        None,
        "DEBUG, INFO, WARNING, ERROR",
        "Every part's level [--log-level].",
    ),
    Key("log_format", "choice:text,json", None, "text, json", "json: one object per line [--log-format]."),
    Key(
        "metrics", "address", None, "HOST:PORT, e.g. 127.0.0.1:9464", "Prometheus /metrics and /health [off]."
    ),
    Key("lake", "str", None, "a path or a URI (s3://bucket/prefix)", "The lake, if not <data_dir>/lake."),
    Key("shard", "shard", None, "i/n with 0 <= i < n", "Record this recorder's share of the symbols."),
    Key("stop_timeout", "duration", 4.0, _DURATION, "SIGTERM to SIGKILL for children on stop [4s]."),
    *(
        Key(f"record.{k}", _RECORD_KINDS.get(k) or _KINDS[command.KEYS[k]], None, allowed, text)
        for k, (allowed, text) in _RECORD_HELP.items()
    ),
    Key(
        "record.account", "bool", False, "true, false", "Also record the account stream (needs credentials)."
    ),
    Key("poll.name", "choice:" + ",".join([*SNAPSHOTS, *ACCOUNT_SNAPSHOTS]), None, "", "The snapshot."),
    Key("poll.every", "duration", None, _DURATION, "Seconds between rounds (required)."),
    Key("poll.symbols", "symbols", None, '"all" or a list of contracts', "[all where the endpoint allows]"),
    Key("backfill.dataset", "choice:" + ",".join([*SERIES, "income"]), None, "", "The series backfilled."),
    Key("backfill.interval", "intervals", None, "a list of " + ", ".join(INTERVALS), "For klines [1m]."),
    Key("backfill.symbols", "symbols", None, '"all" or a list of contracts', "[record.symbols]"),
    Key("backfill.every", "duration", None, _DURATION, "Time between runs (required)."),
    Key("backfill.lookback", "duration", 86400.0, _DURATION, "Each run fills what is missing this far back."),
    Key("heal.every", "duration_off", 300.0, _DURATION + ', or "off"', "Time between heal passes [5m]."),
    Key("heal.lookback", "duration", 21600.0, _DURATION, "Outages ending this long ago or later [6h]."),
    Key("heal.datasets", "list", None, "trades, klines, funding_rates, mark_klines", "[all four]"),
    Key("compact.every", "duration_off", 600.0, _DURATION + ', or "off"', "Time between compactions [10m]."),
    Key("compact.older_than", "duration", 3600.0, _DURATION, "Compact days that ended this long ago [1h]."),
    Key("compact.grace", "duration", 300.0, _DURATION, "Old files stay this long for open readers [5m]."),
)
BY_NAME = {key.name: key for key in KEYS}
REQUIRED = {"poll.name", "poll.every", "backfill.dataset", "backfill.every"}
SECTIONS = {"record": "table", "heal": "table", "compact": "table", "poll": "array", "backfill": "array"}


@dataclass(frozen=True)
class ServiceConfig:
    """A checked run config: top-level values, the [record] keys for record --config, the schedules."""

    path: Path
    top: dict[str, Any]
    record: dict[str, Any] | None  # None: no [record] table, no recorder
    polls: tuple[dict[str, Any], ...] = ()
    backfills: tuple[dict[str, Any], ...] = ()
    heal: dict[str, Any] = field(default_factory=dict)
    compact: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> str | None:
        return self.top["metrics"]  # type: ignore[no-any-return]

    @property
    def symbols(self) -> str | None:
        """record.symbols as the CLI's comma-separated text ("all" stays "all")."""
        return None if self.record is None else self.record.get("symbols")

    @property
    def secrets(self) -> dict[str, str]:
        keys = (self.record or {}).get("credentials", {})
        return {name: str(keys[name]) for name in ("api_key", "api_secret") if keys.get(name)}


def check(document: dict[str, Any], path: Path) -> ServiceConfig:
    """Check a parsed document against KEYS (unknown keys refused at every level) and the commands' rules."""
    for name, value in document.items():
        shape = SECTIONS.get(name)
        if shape == "table" and not isinstance(value, dict):
            raise ConfigError(f"config {path}: {name} = {value!r}: expected a [{name}] table")
        if shape == "array" and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
            raise ConfigError(f"config {path}: {name} = {value!r}: expected [[{name}]] tables")
    top = _section(path, "", {k: v for k, v in document.items() if k not in SECTIONS})
    record = None if "record" not in document else _record(path, document["record"])
    polls = tuple(
        _section(path, "poll", entry, f"poll[{i}]") for i, entry in enumerate(document.get("poll", []))
    )
    backfills = tuple(
        _backfill(path, _section(path, "backfill", entry, f"backfill[{i}]"), record, i)
        for i, entry in enumerate(document.get("backfill", []))
    )
    return ServiceConfig(
        path,
        top,
        record,
        polls,
        backfills,
        _section(path, "heal", document.get("heal", {})),
        _section(path, "compact", document.get("compact", {})),
    )


def _section(path: Path, section: str, table: dict[str, Any], label: str | None = None) -> dict[str, Any]:
    """Check one table's keys and values; fill defaults; return the normalized values by short name."""
    prefix = f"{section}." if section else ""
    known = {
        k.name.removeprefix(prefix): k
        for k in KEYS
        if k.name.startswith(prefix) and "." not in k.name.removeprefix(prefix)
    }
    where = label or section
    for raw in table:
        if raw.replace("-", "_") not in known:
            owner = f" in [{where}]" if where else ""
            why = _OWNED.get(raw.replace("-", "_")) if section == "record" else None
            hint = f" ({why})" if why else f"; known: {', '.join(sorted(known))}"
            raise ConfigError(f"config {path}: unknown key {raw!r}{owner}{hint}")
    values = {name: key.default for name, key in known.items()}
    for raw, value in table.items():
        name = raw.replace("-", "_")
        key = known[name]
        try:
            kind, _, argument = key.kind.partition(":")
            values[name] = CHECKS[kind](value, argument)
        except (TypeError, ValueError):
            allowed = key.allowed or key.kind.partition(":")[2].replace(",", ", ")
            shown = f"{where}.{raw}" if where else raw
            raise ConfigError(f"config {path}: {shown} = {_shown(value, key)}: expected {allowed}") from None
    for name in known:
        if f"{section}.{name}" in REQUIRED and values[name] is None:
            wanted = known[name].allowed or known[name].kind.partition(":")[2].replace(",", ", ")
            raise ConfigError(f"config {path}: [{where}] needs {name} ({wanted})")
    return values


def _record(path: Path, table: dict[str, Any]) -> dict[str, Any]:
    """[record]: its keys checked here for shape, then by record's own option builder for meaning."""
    credentials = table.get("credentials", {})
    flat = {k: v for k, v in table.items() if k != "credentials"}
    if not isinstance(credentials, dict):
        raise ConfigError(f"config {path}: record.credentials = ***: expected a [record.credentials] table")
    unknown = [k for k in credentials if k not in ("api_key", "api_secret")]
    if unknown:
        raise ConfigError(
            f"config {path}: unknown key {unknown[0]!r} in [record.credentials]; known: api_key, api_secret"
        )
    values = _section(path, "record", {**flat, **credentials})
    values["credentials"] = {k: values.pop(k) for k in ("api_key", "api_secret")}
    chosen = {k: v for k, v in values.items() if v is not None and k not in ("credentials", "account")}
    endpoints = command.Endpoints(Path("."), "http://127.0.0.1", "ws://127.0.0.1")
    try:
        command.options_from(dict(chosen), endpoints, bool(values["account"]))
    except ValueError as error:  # ConfigError and TopicError are ValueErrors
        raise ConfigError(f"config {path}: [record] {error}") from None
    return values


def _backfill(path: Path, entry: dict[str, Any], record: dict[str, Any] | None, index: int) -> dict[str, Any]:
    bars = SERIES[entry["dataset"]].has_interval if entry["dataset"] in SERIES else False
    where = f"config {path}: backfill[{index}]"
    if entry["interval"] is not None and not bars:
        raise ConfigError(
            f"{where}.interval: {entry['dataset']} has no interval (only klines and mark-klines)"
        )
    if entry["dataset"] == "income" and entry["symbols"] is not None:
        raise ConfigError(f"{where}.symbols: income is the account's own history, it takes no symbols")
    if entry["dataset"] != "income" and entry["symbols"] is None:
        if record is None or record.get("symbols") is None:
            raise ConfigError(f"{where} needs symbols (there is no [record] symbols list to default to)")
        entry = {**entry, "symbols": record["symbols"]}
    return entry


def _shown(value: Any, key: Key) -> str:
    return "***" if key.kind == "secret" else repr(value)


__all__ = ["KEYS", "ConfigError", "Key", "ServiceConfig", "check", "parse_duration"]
