"""Parity: where the stream and REST both recorded a window, do they agree? The stream path's proof.

Trades: the share of stream trades matched one-to-one to REST trades by (time, price, qty, side), counted
per key (min of the two counts: identical-looking fills match one each). Bars: the share of final stream
bars (the last update of a bar closed while its topic flowed) equal in OHLCV to the REST bar. A window
counts where REST covers it (the backfill cursor) and the stream flowed (the topic's span minus its
outages, padded by heal.EDGE_MS). Rows are read per source from the lake's files, not from the views,
which keep one row per fact.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from backfill import cursor as cursors
from backfill.heal import EDGE_MS
from backfill.series import INTERVAL_MS
from schemas import DATASETS
from storage.gaps import Outage, outages
from storage.lake import Lake
from storage.state import State
from storage.stored import scan_sql, stored_files

Span = tuple[int, int]


@dataclass
class Parity:
    trades: int = 0  # stream trades in windows both recorded
    trades_matched: int = 0
    bars: int = 0  # final stream bars in windows both recorded
    bars_equal: int = 0
    windows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def trade_share(self) -> float | None:
        return self.trades_matched / self.trades if self.trades else None

    @property
    def bar_share(self) -> float | None:
        return self.bars_equal / self.bars if self.bars else None

    def as_json(self) -> dict[str, Any]:
        return {
            "trades": {"stream": self.trades, "matched": self.trades_matched, "share": self.trade_share},
            "bars": {"stream": self.bars, "equal": self.bars_equal, "share": self.bar_share},
            "windows": self.windows,
        }

    def lines(self) -> str:
        def share(value: float | None) -> str:
            return "n/a (no window recorded by both)" if value is None else f"{value:.2%}"

        return (
            f"trades: {self.trades} stream trades in windows REST also covers, "
            f"{share(self.trade_share)} matched one-to-one to REST\n"
            f"bars: {self.bars} final stream bars, {share(self.bar_share)} equal to the REST bar"
        )


def parity(
    con: duckdb.DuckDBPyConnection, lake: Lake, state: State, symbols: Sequence[str] | None = None
) -> Parity:
    """Compare stream and REST rows over every window both recorded."""
    result = Parity()
    found = outages(con)
    spans = _topic_spans(con)
    for topic, (low, high) in sorted(spans.items()):
        symbol, _, channel = topic.partition("@")
        if symbols is not None and symbol not in symbols:
            continue
        streamed = _minus(low, high, [o for o in found if o.topic == topic])
        if channel == "trade":
            both = _intersect(
                streamed, cursors.load(state, cursors.cursor_name("trades", symbol, None)).covered
            )
            _trades(con, lake, symbol, both, result)
        elif channel.startswith("kline_") and channel.removeprefix("kline_") in INTERVAL_MS:
            interval = channel.removeprefix("kline_")
            rest = cursors.load(state, cursors.cursor_name("klines", symbol, interval)).covered
            _bars(con, lake, symbol, interval, streamed, rest, result)
        else:
            continue
    return result


def _trades(
    con: duckdb.DuckDBPyConnection, lake: Lake, symbol: str, spans: list[Span], result: Parity
) -> None:
    for low, high in spans:
        rows = _sql(
            con,
            f"""
            WITH rows AS (SELECT * FROM {_scan(lake, "trades")} WHERE symbol = $symbol
                AND epoch_ms(trade_time) >= $low AND epoch_ms(trade_time) < $high),
            stream AS (SELECT DISTINCT ON (received_at, frame_index) * FROM rows WHERE source = 'stream'),
            rest AS (SELECT DISTINCT ON (trade_id) * FROM rows WHERE source = 'backfill'),
            s AS (SELECT trade_time, price, qty, is_buyer_maker, count(*) AS n FROM stream GROUP BY ALL),
            r AS (SELECT trade_time, price, qty, is_buyer_maker, count(*) AS n FROM rest GROUP BY ALL)
            SELECT coalesce(sum(s.n), 0) AS streamed,
                   coalesce(sum(least(s.n, coalesce(r.n, 0))), 0) AS matched
            FROM s LEFT JOIN r USING (trade_time, price, qty, is_buyer_maker)
            """,
            {"symbol": symbol, "low": low, "high": high},
        )[0]
        result.trades += int(rows["streamed"])
        result.trades_matched += int(rows["matched"])
        result.windows.append({"dataset": "trades", "symbol": symbol, "start_ms": low, "end_ms": high})


def _bars(
    con: duckdb.DuckDBPyConnection,
    lake: Lake,
    symbol: str,
    interval: str,
    streamed: list[Span],
    rest: list[Span],
    result: Parity,
) -> None:
    step = INTERVAL_MS[interval]
    # A bar counts when REST covers its open and the stream flowed from its open to its close.
    opens = [(low, high - step + 1) for low, high in streamed if high - low >= step]
    for low, high in _intersect(opens, rest):
        rows = _sql(
            con,
            f"""
            WITH rows AS (SELECT * FROM {_scan(lake, "klines")}
                WHERE symbol = $symbol AND "interval" = $interval
                AND epoch_ms(open_time) >= $low AND epoch_ms(open_time) < $high),
            s AS (SELECT open_time, arg_max((open, high, low, close, volume), received_at) AS bar
                  FROM rows WHERE source = 'stream' GROUP BY open_time),
            r AS (SELECT open_time, any_value((open, high, low, close, volume)) AS bar
                  FROM rows WHERE source = 'backfill' GROUP BY open_time)
            SELECT count(*) AS bars, count(*) FILTER (WHERE s.bar = r.bar) AS equal
            FROM s JOIN r USING (open_time)
            """,
            {"symbol": symbol, "interval": interval, "low": low, "high": high},
        )[0]
        result.bars += int(rows["bars"])
        result.bars_equal += int(rows["equal"])
        result.windows.append(
            {"dataset": "klines", "symbol": symbol, "interval": interval, "start_ms": low, "end_ms": high}
        )


def _scan(lake: Lake, dataset: str) -> str:
    # every stored row: the stream copies compaction set aside (_superseded/) are what parity compares
    files = stored_files(lake, DATASETS[dataset])
    if not files:
        return "(SELECT NULL AS symbol WHERE false)"
    return scan_sql(files, "hive_partitioning = true, union_by_name = true")


def _sql(con: duckdb.DuckDBPyConnection, query: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = con.sql(query, params=params).to_arrow_table().to_pylist()
    return rows


def _topic_spans(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[int, int]]:
    table = con.sql(
        "SELECT topic, epoch_ms(min(received_at)) AS low, epoch_ms(max(received_at)) AS high "
        "FROM raw_messages WHERE topic LIKE '%@%' GROUP BY topic"
    ).to_arrow_table()
    return {row["topic"]: (int(row["low"]), int(row["high"])) for row in table.to_pylist()}


def _minus(low: int, high: int, holes: list[Outage]) -> list[Span]:
    """[low, high) without the outages (each padded by EDGE_MS: edge frames may hold part of a ms)."""
    cut = cursors.merged([(_ms(o.start) - EDGE_MS, _ms(o.end) + EDGE_MS) for o in holes])
    spans, at = [], low
    for a, b in cut:
        if a > at:
            spans.append((at, min(a, high)))
        at = max(at, b)
    if at < high:
        spans.append((at, high))
    return [(a, b) for a, b in spans if a < b]


def _intersect(left: list[Span], right: list[Span]) -> list[Span]:
    return [(max(a, c), min(b, d)) for a, b in left for c, d in right if max(a, c) < min(b, d)]


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)
