"""A recording as the recorder would have left it, built from the simulator's market: fast heal tests.

One `<symbol>@trade`, `<symbol>@kline_1m` and `<symbol>@depth20@500ms` frame per second on connection
"aa-00", with an outage: a `disconnect` event, nothing for its duration, a `reconnect` event, frames again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from schemas import DATASETS
from simulator.market import Market
from storage.lake import Lake

SECOND_MS = 1000
MINUTE_MS = 60_000


@dataclass(frozen=True)
class Recording:
    symbols: tuple[str, ...]
    start_ms: int
    end_ms: int
    gap: tuple[int, int]  # [from, to): no frame received
    silent: tuple[int, int] | None = None  # [from, to): no trade frame, the socket alive (a quiet market)


def record(lake: Lake, market: Market, recording: Recording) -> None:
    """Write raw_messages, stream_events, trades and klines (source='stream') for the recording."""
    events: list[dict[str, Any]] = []
    frames: list[dict[str, Any]] = []
    trades: list[dict[str, Any]] = []
    bars: list[dict[str, Any]] = []
    seq = 0

    def stamp(ms: int) -> datetime:
        return datetime.fromtimestamp(ms / 1000, UTC)

    def event(ms: int, name: str) -> None:
        nonlocal seq
        seq += 1
        events.append(
            {**_base("aa-00", seq, stamp(ms)), "event": name, "topic": None, "code": None, "detail": None}
        )

    event(recording.start_ms - SECOND_MS, "connect")
    low, high = recording.gap
    down = False
    for second in range(recording.start_ms, recording.end_ms, SECOND_MS):
        if low <= second < high:
            if not down:
                event(low, "disconnect")
                down = True
            continue
        if down:
            event(high, "reconnect")
            down = False
        received = stamp(second + SECOND_MS)  # a second's trades arrive at its end
        quiet = recording.silent is not None and recording.silent[0] <= second < recording.silent[1]
        for symbol in recording.symbols:
            if not quiet:
                seq += 1
                frames.append({**_base("aa-00", seq, received), "topic": f"{symbol}@trade", "text": "{}"})
            for index, trade in enumerate(market.trades(symbol, second, second + SECOND_MS)):
                trades.append(_trade(symbol, trade, received, index))
            for channel in ("kline_1m", "depth20@500ms"):  # depth: raw frames only (no REST history)
                seq += 1
                frames.append({**_base("aa-00", seq, received), "topic": f"{symbol}@{channel}", "text": "{}"})
            if (second + SECOND_MS) % MINUTE_MS == 0:  # the bar's final push, at its close
                opened = second + SECOND_MS - MINUTE_MS
                for bar in market.klines(symbol, "1m", opened, opened + 1):
                    bars.append(_bar(symbol, bar, received))
    lake.write(DATASETS["stream_events"], events)
    lake.write(DATASETS["raw_messages"], frames)
    lake.write(DATASETS["trades"], trades)
    lake.write(DATASETS["klines"], bars)


def _base(connection: str, seq: int, received: datetime) -> dict[str, Any]:
    return {"connection": connection, "seq": seq, "received_at": received, "source": "stream"}


def _trade(symbol: str, trade: Any, received: datetime, index: int) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "trade_time": trade.time_ms,
        "price": float(trade.price),
        "qty": float(trade.qty),
        "is_buyer_maker": trade.is_buyer_maker,
        "trade_id": None,
        "quote_qty": None,
        "frame_index": index,
        "received_at": received,
        "source": "stream",
    }


def _bar(symbol: str, bar: Any, received: datetime) -> dict[str, Any]:
    values = {name: float(getattr(bar, name)) for name in ("open", "high", "low", "close", "volume")}
    return {
        "symbol": symbol,
        "interval": "1m",
        "open_time": bar.open_ms,
        **values,
        "received_at": received,
        "source": "stream",
    }


def truth_trades(market: Market, symbol: str, low_ms: int, high_ms: int) -> list[tuple[Any, ...]]:
    return sorted(
        (t.time_ms, float(t.price), float(t.qty), t.is_buyer_maker)
        for t in market.trades(symbol, low_ms, high_ms)
    )
