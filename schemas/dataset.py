"""What a dataset is, and the parsing helpers every converter shares. Pure: no network, no disk."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import pyarrow as pa

Row = dict[str, Any]
Message = Mapping[str, Any]
StreamConverter = Callable[[Message], list[Row]]
RestConverter = Callable[[Message, Mapping[str, Any]], list[Row]]  # (response envelope, query params)
Find = Callable[[Any, str], list[Any]]  # (a payload's `data`, where) -> the items rows are built from

# How a dataset's rest_path is read: history walked by time or by trade id; a snapshot answered for every
# contract at once, or asked one symbol at a time.
PAGING = ("time", "id", "all", "per_symbol")

SOURCES = ("backfill", "poll", "stream")  # view precedence, best first (DESIGN.md "Dedupe on read")

# Lineage: stamped by the path that produced the row (recorder, backfill, poller), never by a converter.
LINEAGE = (
    pa.field("received_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("source", pa.string(), nullable=False),
)

AMOUNT = pa.float64()  # BingX decimals have <= 15 significant digits: exact float64 round-trip (DESIGN.md)
MS = pa.timestamp("ms", tz="UTC")
INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h", "1d", "3d", "1w", "1M")


# What a converter's field access raises on a malformed item; the Dataset turns it into a ConversionError.
SHAPE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, OverflowError)


class ConversionError(ValueError):
    """A payload does not have the shape its dataset expects; the message goes to _rejects with this text."""


@dataclass(frozen=True)
class Converter:
    """One source's converter, bare: `rows` builds rows from the items `find` picked out of the payload.

    `rows` reads fields without checks and may raise SHAPE_ERRORS; the Dataset then names the culprit
    with `explain` over the items and `fields` (wire name -> kind). Its arguments per source:
    stream (items, frame, symbol, channel); rest (items, envelope, query); account event (items, event).
    """

    rows: Callable[..., list[Row]]
    fields: Mapping[str, str]
    find: Find | None = None  # None: `data` as an object, an array or null (see `items`)
    query: tuple[str, ...] = ()  # rest: request parameters the rows depend on, checked first


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
    paging: str | None = None  # how rest_path is read: one of PAGING
    rest_params: tuple[tuple[str, Any], ...] = ()  # fixed query parameters, e.g. depth's limit
    default_channel: str | None = None  # its channel when none is chosen (demo, bench), e.g. "kline_1m"
    alias: str | None = None  # a short CLI name kept beside `name`, e.g. "funding"
    stream: Converter | None = None  # frames of `channel`: rows(items, frame, symbol, channel)
    rest: Converter | None = None  # rest_path's answers: rows(items, envelope, query)
    event: Converter | None = None  # account stream events (no topic): rows(items, event)
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

    # Cached: the recorder reads these once per frame.
    @cached_property
    def from_stream(self) -> StreamConverter | None:
        return None if self.stream is None else self.convert_stream

    @cached_property
    def from_rest(self) -> RestConverter | None:
        return None if self.rest is None else self.convert_rest

    @cached_property
    def _stream_where(self) -> str:
        return f"{self.name} stream"

    # The one skeleton, written out per source: a shared helper cost a frame ~0.25 µs more (trades: +14%).
    def convert_stream(self, message: Message) -> list[Row]:
        """Convert one data frame; a malformed one is a one-line ConversionError starting "<name> stream"."""
        where, stream = self._stream_where, self.stream
        assert stream is not None, f"{self.name} has no stream converter"
        symbol, channel = topic_parts(message, where)
        found = (stream.find or items)(message.get("data"), where)
        try:
            return stream.rows(found, message, symbol, channel)
        except SHAPE_ERRORS as error:
            raise explain(where, found, stream.fields, error) from None

    def convert_rest(self, envelope: Message, query: Mapping[str, Any]) -> list[Row]:
        """Convert one REST answer to `query`; a malformed one is a ConversionError starting "<name> rest"."""
        where, rest = f"{self.name} rest", self.rest
        assert rest is not None, f"{self.name} has no rest converter"
        for name in rest.query:
            query_value(query, name, where)
        found = (rest.find or items)(envelope_data(envelope, where), where)
        try:
            return rest.rows(found, envelope, query)
        except SHAPE_ERRORS as error:
            raise explain(where, found, rest.fields, error) from None

    def convert_event(self, message: Message) -> list[Row]:
        """Convert one account stream event; a malformed one is a ConversionError starting "<name> stream"."""
        where, event = self._stream_where, self.event
        assert event is not None, f"{self.name} has no event converter"
        found = (event.find or items)(message, where)
        try:
            return event.rows(found, message)
        except SHAPE_ERRORS as error:
            raise explain(where, found, event.fields, error) from None


# ---- parsing helpers: BingX's loose typing in one place (BINGX_API.md §1, §27) ----


_MIN_MS, _MAX_MS = -62_135_596_800_000, 253_402_300_799_999  # a datetime's range: years 1 to 9999


def time_ms(ms: int | str) -> int:
    """Check a time in epoch milliseconds (an int or a numeric string); return it as an int.

    Rows carry times as epoch ms and Arrow types them from the schema (timestamp[ms, UTC]): exact, and no
    datetime is made per value and taken apart again (~8% of the stream converter's work). A time outside
    a datetime's range is a ConversionError, so one absurd frame is quarantined, not its whole batch failed.
    """
    value = int(ms)
    if _MIN_MS <= value <= _MAX_MS:
        return value
    raise ConversionError(f"time {value} ms is out of range")


def ms_or_none(value: Any) -> int | None:
    """Parse a time field that may be absent or "" (null), an int or a numeric string. 0 stays the epoch."""
    if value is None or value == "":
        return None
    return time_ms(value)


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


_MAPPING = (dict, Mapping)  # dict first: a C-level check; Mapping alone goes through the ABC machinery


def items(data: Any, where: str | None = None) -> list[Mapping[str, Any]]:
    """Normalise `data` that may be an object, an array of objects, or null into a list."""
    if data is None:
        return []
    if isinstance(data, _MAPPING):
        return [data]
    if isinstance(data, list):
        return data
    prefix = f"{where}: " if where else ""
    raise ConversionError(f"{prefix}expected an object or an array in 'data', got {type(data).__name__}")


def topic_parts(message: Message, where: str | None = None) -> tuple[str, str]:
    """Split a data frame's dataType "BTC-USDT@kline_1m" into ("BTC-USDT", "kline_1m")."""
    data_type = message.get("dataType") if isinstance(message, _MAPPING) else None
    if not isinstance(data_type, str) or "@" not in data_type:
        prefix = f"{where}: " if where else ""
        raise ConversionError(f"{prefix}bad dataType {data_type!r}")
    symbol, _, channel = data_type.partition("@")
    return symbol, channel


def flag(value: Any) -> bool | None:
    """Parse a boolean sent as JSON true/false or as the strings "true"/"false" (contracts); "" is null."""
    if value is True or value is False:
        return value
    if value is None or value == "":
        return None
    if value == "true":
        return True
    if value == "false":
        return False
    raise ConversionError(f"expected a boolean, got {value!r}")


def integer(value: Any) -> int | None:
    """Parse an integer sent as a JSON number or a numeric string ("4"); "" is null."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ConversionError(f"expected an integer, got {value!r}")
    return int(value)


def envelope_data(envelope: Message, where: str) -> Any:
    """Return a REST envelope's `data` after checking its `code` is 0 (a JSON 0 or the string "0")."""
    if not isinstance(envelope, Mapping):
        raise ConversionError(f"{where}: expected a JSON object envelope, got {type(envelope).__name__}")
    code = envelope.get("code", 0)
    if code != 0 and code != "0":
        raise ConversionError(f"{where}: envelope code {code!r} ({envelope.get('msg')!r}), not 0")
    return envelope.get("data")


def query_value(query: Mapping[str, Any], name: str, where: str) -> str:
    """Read a request parameter the rows depend on (REST items often omit the symbol)."""
    value = query.get(name)
    if value is None or value == "":
        raise ConversionError(f"{where}: the query has no {name!r}")
    return str(value)


# Field kinds for `explain`; a trailing "?" marks a field that may be absent, null or "".
_KINDS: dict[str, Callable[[Any], Any]] = {
    "decimal": amount,
    "time": time_ms,
    "flag": flag,
    "integer": integer,
    "text": lambda value: _expect(value, (str, int)),
    "object": lambda value: _expect(value, Mapping),
    "array": lambda value: _expect(value, list),
    "levels": lambda value: [(float(price), float(qty)) for price, qty in _expect(value, list)],
}


def _expect(value: Any, kind: Any) -> Any:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"unexpected {type(value).__name__}")
    return value


def explain(
    where: str, objects: Sequence[Any], fields: Mapping[str, str], error: Exception | None = None
) -> ConversionError:
    """Name the first missing or unparsable field among `objects`, as a one-line ConversionError.

    Converters run a fast path without per-field checks and call this only after it failed, so a
    bad payload costs a second look while a good one costs nothing.
    """
    for index, item in enumerate(objects):
        at = f"{where}[{index}]" if len(objects) > 1 else where
        problem = _problem(item, fields)
        if problem is not None:
            return ConversionError(f"{at}: {problem}")
    if isinstance(error, ConversionError):  # raised with its own explanation, maybe without `where`
        text = str(error)
        message = text if text.startswith(where) else f"{where}: {text}"
    else:
        detail = f" ({type(error).__name__}: {error})" if error is not None else ""
        message = f"{where}: unexpected shape{detail}"
    return ConversionError(" ".join(message.split()))  # one line, whatever the error carried


def _problem(item: Any, fields: Mapping[str, str]) -> str | None:
    if not isinstance(item, Mapping):
        return f"expected an object, got {type(item).__name__} {_short(item)}"
    for name, kind in fields.items():
        value = item.get(name)
        if value is None or value == "":
            if kind.endswith("?"):
                continue
            return f"field {name!r} is missing" if name not in item else f"field {name!r} is {value!r}"
        try:
            _KINDS[kind.rstrip("?")](value)
        except (TypeError, ValueError, OverflowError):
            return f"field {name!r} has a bad value {_short(value)}"
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
