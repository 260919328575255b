"""What a dataset is, and the parsing helpers every converter shares. Pure: no network, no disk."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

Row = dict[str, Any]
Message = Mapping[str, Any]
StreamConverter = Callable[[Message], list[Row]]
RestConverter = Callable[[Message, Mapping[str, Any]], list[Row]]  # (response envelope, query params)

SOURCES = ("backfill", "poll", "stream")  # view precedence, best first (DESIGN.md "Dedupe on read")

# Lineage: stamped by the path that produced the row (recorder, backfill, poller), never by a converter.
LINEAGE = (
    pa.field("received_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("source", pa.string(), nullable=False),
)

AMOUNT = pa.float64()  # BingX decimals have <= 15 significant digits: exact float64 round-trip (DESIGN.md)
MS = pa.timestamp("ms", tz="UTC")
INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M")


class ConversionError(ValueError):
    """A payload does not have the shape its dataset expects; the message goes to _rejects with this text."""


@dataclass(frozen=True)
class Dataset:
    """One dataset, declared once. Writer, views, subscriptions, backfill, CLI and tests derive from it.

    `key` is what makes one fact unique; the view keeps one row per key, preferring sources in the order of
    SOURCES and then the latest `received_at`. With `occurrence` set (trades), rows that look identical are
    separate facts: the view numbers equal-looking rows per key within each source (after dropping exact
    replays of the same row, identified by `replay_key` per source) and then keeps one row per (key, n).
    """

    name: str  # lake folder, view name and CLI argument, e.g. "klines"
    fields: tuple[pa.Field, ...]  # the facts: snake_case names, exact types
    key: tuple[str, ...]
    event_time: str  # the exchange's timestamp column: day partitions, backfill cursors
    description: str
    channel: re.Pattern[str] | None = None  # matches the topic suffix after "<SYMBOL>@", e.g. "kline_1m"
    rest_path: str | None = None  # history or snapshot endpoint
    from_stream: StreamConverter | None = None
    from_rest: RestConverter | None = None
    partitions: tuple[str, ...] = ("symbol",)  # hive folders before date=; kline-like add "interval"
    occurrence: bool = False
    replay_key: Mapping[str, tuple[str, ...]] | None = None  # per source: columns that identify a copy
    view_columns: tuple[str, ...] = ()  # extra SQL select expressions over the deduped rows, e.g. is_final

    @property
    def schema(self) -> pa.Schema:
        return pa.schema(self.fields + LINEAGE)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.schema)

    def matches(self, channel: str) -> bool:
        """Say whether a topic suffix (the part after "<SYMBOL>@") belongs to this dataset."""
        return self.channel is not None and self.channel.fullmatch(channel) is not None


# ---- parsing helpers: BingX's loose typing in one place (BINGX_API.md §1, §27) ----


def utc_from_ms(ms: int | str) -> datetime:
    """Turn epoch milliseconds (an int or a numeric string) into an aware UTC datetime."""
    value = int(ms)
    return datetime.fromtimestamp(value // 1000, tz=UTC).replace(microsecond=(value % 1000) * 1000)


def ms_or_none(value: Any) -> datetime | None:
    """Parse a time field that may be absent, "", 0-meaning-none is NOT assumed, an int or a numeric string."""
    if value is None or value == "":
        return None
    return utc_from_ms(value)


def amount(value: Any) -> float | None:
    """Parse a BingX decimal: a string, a JSON number, or "" / None for unused fields."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ConversionError(f"expected a decimal, got {value!r}")
    return float(value)


def required(item: Mapping[str, Any], name: str) -> Any:
    """Read a field that must be present; a missing one is a ConversionError naming it."""
    try:
        value = item[name]
    except (KeyError, TypeError):
        raise ConversionError(f"missing field {name!r}") from None
    if value is None:
        raise ConversionError(f"field {name!r} is null")
    return value


def items(data: Any) -> list[Mapping[str, Any]]:
    """Normalise `data` that may be an object, an array of objects, or null into a list."""
    if data is None:
        return []
    if isinstance(data, Mapping):
        return [data]
    if isinstance(data, list):
        return data
    raise ConversionError(f"expected an object or an array, got {type(data).__name__}")


def topic_parts(message: Message) -> tuple[str, str]:
    """Split a data frame's dataType "BTC-USDT@kline_1m" into ("BTC-USDT", "kline_1m")."""
    data_type = message.get("dataType")
    if not isinstance(data_type, str) or "@" not in data_type:
        raise ConversionError(f"bad dataType {data_type!r}")
    symbol, _, channel = data_type.partition("@")
    return symbol, channel
