"""The path → endpoint table of the REST simulator and the quote endpoints (BINGX_API §2–7, §10–14)."""

from __future__ import annotations

from typing import Any

from simulator.endpoints import (
    DEPTH_LIMITS,
    ApiError,
    Endpoint,
    Request,
    integer,
    klines,
    listed,
    mark_klines,
    ordered,
    quote_qty,
    symbol,
)
from simulator.market import Trade

DEPTH_TAG = "Invalid parameters, err:Key: 'DepthReq.Limit' Error:Field validation for 'Limit' failed on the "
DEPTH_TAG += "'len=0|oneof=5 10 20 50 100 500 1000' tag"


def server_time(request: Request) -> dict[str, Any]:
    return {"serverTime": request.now_ms}


def contracts(request: Request) -> list[dict[str, Any]]:
    raw = request.params.get("symbol")
    if raw:  # paused contracts are still listed here, with status 25
        if raw not in request.market.symbols:
            symbol(request)  # raises the format or 109425 error
        return [request.market.contract(raw)]
    return [request.market.contract(s) for s in request.market.symbols]


def depth(request: Request) -> dict[str, Any]:
    name = symbol(request)
    assert name is not None
    raw = request.params.get("limit", "20")
    if raw not in {str(n) for n in DEPTH_LIMITS}:
        raise ApiError(109400, DEPTH_TAG)
    bids, asks = request.market.book(name, request.now_ms, int(raw))
    # 2026 PROBE: bids descending and asks ascending (best first); coin arrays equal the plain ones.
    levels = {"bids": [list(level) for level in bids], "asks": [list(level) for level in asks]}
    return {"T": request.now_ms, **levels, "bidsCoin": levels["bids"], "asksCoin": levels["asks"]}


def recent_trades(request: Request) -> list[dict[str, Any]]:
    name = symbol(request)
    assert name is not None
    limit = integer(request, "limit", 500, 1, 1000)
    found = request.market.recent_trades(name, request.now_ms, limit)
    return [_trade(t) | {"fillId": str(t.id)} for t in reversed(found)]  # newest first (BINGX_API §5)


def historical_trades(request: Request) -> list[dict[str, Any]]:
    name = symbol(request)
    assert name is not None
    limit = integer(request, "limit", 50, 1, 100)
    if request.params.get("fromId"):
        from_id = max(integer(request, "fromId"), _oldest_served_id(request, name))
        found = request.market.trades_from_id(name, from_id, limit, request.now_ms)
    else:
        found = request.market.recent_trades(name, request.now_ms, limit)
    return [_trade(t) | {"id": str(t.id)} for t in found]  # ascending by id, fromId inclusive


def _oldest_served_id(request: Request, name: str) -> int:
    """The first id historicalTrades still serves: older trades are gone (Options.trade_history_ms)."""
    reach = request.options.trade_history_ms
    if reach is None:
        return 0
    cutoff = request.now_ms - reach
    for hour_start in range(cutoff - cutoff % 3_600_000, request.now_ms, 3_600_000):
        found = request.market.trades(name, max(cutoff, hour_start), hour_start + 3_600_000)
        if found:
            return found[0].id
    return 1 << 62  # nothing young enough: every fromId answers an empty page


def premium_index(request: Request) -> dict[str, Any] | list[dict[str, Any]]:
    name = symbol(request, required=False)
    if name is not None:
        return _premium(request, name)
    return [_premium(request, s) for s in listed(request)]


def funding_rate(request: Request) -> list[dict[str, Any]] | None:
    name = symbol(request)
    assert name is not None
    limit = integer(request, "limit", 100, 1, 1000)
    start, end = request.params.get("startTime"), request.params.get("endTime")
    stop = min(
        integer(request, "endTime") + 1 if end else request.now_ms + 1, request.now_ms + 1
    )  # completed only
    market = request.market
    if start:
        settled = market.funding(name, integer(request, "startTime"), stop)[
            :limit
        ]  # first `limit` from start
    else:
        step = market.funding_interval_hours(name) * 3_600_000
        settled = market.funding(name, stop - step * limit, stop)[-limit:]
    rows: list[dict[str, Any]] = [
        {"symbol": name, "fundingRate": rate, "fundingTime": t} for t, rate in settled
    ]
    if request.options.funding_mark_price:
        rows = [
            row | {"markPrice": market.mark_price(name, t)} for row, (t, _) in zip(rows, settled, strict=True)
        ]
    if not rows and request.options.funding_null_when_empty:
        return None
    return ordered(request, rows, bool(start or end))


def open_interest(request: Request) -> dict[str, Any]:
    name = symbol(request)
    assert name is not None
    return {
        "openInterest": request.market.open_interest(name, request.now_ms),
        "symbol": name,
        "time": request.now_ms,
    }


def ticker(request: Request) -> dict[str, Any] | list[dict[str, Any]]:
    name = symbol(request, required=False)
    if name is not None:
        return _ticker(request, name)
    return [_ticker(request, s) for s in listed(request)]


def book_ticker(request: Request) -> dict[str, Any]:
    name = symbol(request)
    assert name is not None
    (bid, bid_qty), (ask, ask_qty) = (level[0] for level in request.market.book(name, request.now_ms, 1))
    # snake_case keys and JSON numbers: BINGX_API §13
    values = {
        "bid_price": float(bid),
        "bid_qty": float(bid_qty),
        "ask_price": float(ask),
        "ask_qty": float(ask_qty),
    }
    return {"book_ticker": {"symbol": name, **values}}


def price(request: Request) -> dict[str, Any] | list[dict[str, Any]]:
    name = symbol(request, required=False)
    names = [name] if name is not None else listed(request)
    rows = [
        {"symbol": s, "price": request.market.last_price(s, request.now_ms), "time": request.now_ms}
        for s in names
    ]
    return rows[0] if name is not None else rows


def _trade(trade: Trade) -> dict[str, Any]:
    return {
        "time": trade.time_ms,
        "isBuyerMaker": trade.is_buyer_maker,
        "price": trade.price,
        "qty": trade.qty,
        "quoteQty": quote_qty(trade),
    }


def _premium(request: Request, name: str) -> dict[str, Any]:
    market, now = request.market, request.now_ms
    hours = market.funding_interval_hours(name)
    next_ms = market.next_funding_ms(name, now)
    return {
        "symbol": name,
        "markPrice": market.mark_price(name, now),
        "indexPrice": market.index_price(name, now),
        "lastFundingRate": market.estimated_funding_rate(name, now),  # running estimate (PROBE)
        "nextFundingTime": next_ms,  # absolute instant, not "remaining" (BINGX_API §6)
        "fundingIntervalHours": hours,
        "updateTime": next_ms - hours * 3_600_000,  # the last settlement instant (PROBE)
    }


def _ticker(request: Request, name: str) -> dict[str, Any]:
    stats = request.market.ticker(name, request.now_ms)
    (bid, bid_qty), (ask, ask_qty) = (level[0] for level in request.market.book(name, request.now_ms, 1))
    return {
        "symbol": name,
        "priceChange": stats.change,
        "priceChangePercent": stats.change_percent,
        "lastPrice": stats.last,
        "lastQty": stats.last_qty,
        "highPrice": stats.high,
        "lowPrice": stats.low,
        "volume": stats.volume,
        "quoteVolume": stats.quote_volume,
        "openPrice": stats.open,
        "openTime": stats.first_ms,
        "closeTime": stats.last_ms,
        "askPrice": ask,
        "askQty": ask_qty,
        "bidPrice": bid,
        "bidQty": bid_qty,
    }


ROUTES: dict[str, Endpoint] = {
    "/openApi/swap/v2/server/time": server_time,
    "/openApi/swap/v2/quote/contracts": contracts,
    "/openApi/swap/v2/quote/depth": depth,
    "/openApi/swap/v2/quote/trades": recent_trades,
    "/openApi/swap/v2/quote/premiumIndex": premium_index,
    "/openApi/swap/v2/quote/fundingRate": funding_rate,
    "/openApi/swap/v3/quote/klines": klines,
    "/openApi/swap/v1/market/markPriceKlines": mark_klines,
    "/openApi/swap/v2/quote/openInterest": open_interest,
    "/openApi/swap/v2/quote/ticker": ticker,
    "/openApi/swap/v1/market/historicalTrades": historical_trades,
    "/openApi/swap/v2/quote/bookTicker": book_ticker,
    "/openApi/swap/v1/ticker/price": price,
    "/openApi/swap/v2/quote/price": price,  # legacy twin (2022 docs)
}
