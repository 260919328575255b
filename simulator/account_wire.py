"""Wire shapes of the simulated account: ORDER_TRADE_UPDATE, ACCOUNT_UPDATE (BINGX_API.md §25) and a
/v2/user/positions row (§16). Pure: values in, BingX-shaped dicts out."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from simulator.prices import text_hash

_Q = Decimal("0.00000001")


def order_update(
    symbol: str,
    order_id: str,
    side: str,
    quantity: Decimal,
    price: Decimal,
    fee: Decimal,
    realized: Decimal,
    t_ms: int,
) -> dict[str, Any]:
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": t_ms,
        "o": {
            "s": symbol,
            "c": f"sim-{order_id[-6:]}",
            "i": int(order_id),  # a JSON number beyond 2^53, as in the docs (BINGX_API.md §25)
            "S": side,
            "o": "MARKET",
            "q": str(quantity),
            "p": str(price),
            "ap": str(price),
            "x": "TRADE",
            "X": "FILLED",
            "N": "USDT",
            "n": str(fee),
            "T": t_ms,
            "wt": "MARK_PRICE",
            "ps": "BOTH",
            "rp": str(realized),
            "z": str(quantity),
            "Z": str((quantity * price).quantize(_Q)),
        },
    }


def account_update(
    reason: str,
    balance: Decimal,
    change: Decimal,
    t_ms: int,
    symbol: str | None,
    position_quantity: Decimal | None,
    position_entry: Decimal | None,
) -> dict[str, Any]:
    wallet = str(balance.quantize(_Q))
    account: dict[str, Any] = {
        "m": reason,
        "B": [{"a": "USDT", "wb": wallet, "cw": wallet, "bc": str(change)}],
    }
    if symbol is not None and position_quantity is not None:  # a funding fee on cross margin has no P (§25)
        account["P"] = [
            {
                "s": symbol,
                "pa": str(position_quantity),
                "ep": str(position_entry),
                "up": "0",
                "mt": "cross",
                "iw": "0",
                "ps": "BOTH",
            }
        ]
    return {"e": "ACCOUNT_UPDATE", "E": t_ms, "T": t_ms, "a": account}


def position_row(
    symbol: str, quantity: Decimal, entry: Decimal, mark: Decimal, leverage: int, now_ms: int
) -> dict[str, Any]:
    unrealized = ((mark - entry) * quantity).quantize(_Q)
    return {
        "positionId": str(text_hash(symbol) % 10**18),
        "symbol": symbol,
        "currency": "USDT",
        "positionAmt": str(abs(quantity)),
        "availableAmt": str(abs(quantity)),
        "positionSide": "LONG" if quantity > 0 else "SHORT",
        "isolated": False,
        "avgPrice": str(entry),
        "initialMargin": str((entry * abs(quantity) / leverage).quantize(_Q)),
        "leverage": leverage,
        "unrealizedProfit": str(unrealized),
        "realisedProfit": "0",
        "liquidationPrice": 0,
        "pnlRatio": "0",
        "maxMarginReduction": "0",
        "riskRate": "0",
        "markPrice": str(mark),
        "positionValue": str((mark * abs(quantity)).quantize(_Q)),
        "onlyOnePosition": True,
        "updateTime": now_ms,
    }
