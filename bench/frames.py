"""Realistic BingX data frames for the parsing and storage sections, gzip-compressed as on the wire.

Templates come from tests/payloads/ws_*.json when present, else from BINGX_API.md §18, §20, §22; values are
varied from a seeded random walk so that no two frames are alike (caches and interning would flatter us).
"""

from __future__ import annotations

import copy
import gzip
import itertools
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PAYLOADS = Path(__file__).parent.parent / "tests" / "payloads"

# BINGX_API.md §18, §20 (trimmed to 2 levels; depth20 is grown below), §22 — CONFIRMED doc examples.
_TRADE = {
    "code": 0,
    "dataType": "BTC-USDT@trade",
    "data": [{"q": "0.0162", "p": "121934.9", "T": 1759994162450, "m": False, "s": "BTC-USDT"}],
}
_DEPTH = {
    "code": 0,
    "dataType": "BTC-USDT@depth20@500ms",
    "ts": 1759996742928,
    "data": {"bids": [["121825.7", "7.7622"]], "asks": [["121827.3", "0.0025"]]},
}
_TICKER = {
    "code": 0,
    "dataType": "BTC-USDT@ticker",
    "data": {
        "e": "24hTicker",
        "E": 1759998119388,
        "s": "BTC-USDT",
        "p": "-262.0",
        "P": "-0.21",
        "c": "121621.7",
        "L": "0.0010",
        "h": "124152.9",
        "l": "121412.0",
        "v": "17030.6463",
        "q": "210028.10",
        "o": "121883.7",
        "O": 1759998027573,
        "C": 1759998119403,
        "A": "121621.7",
        "a": "11.3115",
        "B": "121621.5",
        "b": "6.4426",
    },
}
KINDS = ("trade", "depth20", "ticker")
SYMBOLS = (
    ("BTC-USDT", 121_000.0, 1),
    ("ETH-USDT", 4_400.0, 2),
    ("SOL-USDT", 210.0, 3),
    ("DOGE-USDT", 0.25, 5),
)


@dataclass(frozen=True)
class Frames:
    """One kind of frame: parsed dicts, their JSON text and the gzip bytes BingX would send."""

    kind: str
    messages: list[dict[str, Any]]
    texts: list[str]
    wire: list[bytes]
    template_source: str

    @property
    def rows_per_frame(self) -> float:
        if self.kind != "trade":
            return 1.0
        return sum(len(message["data"]) for message in self.messages) / len(self.messages)


def build(kind: str, count: int, seed: int = 0) -> Frames:
    """Build `count` varied frames of one kind ("trade", "depth20" or "ticker")."""
    rng = random.Random(f"{kind}-{seed}")
    template, source = _template(kind)
    messages = [_frame(kind, template, rng, index) for index in range(count)]
    texts = [json.dumps(message, separators=(",", ":")) for message in messages]
    wire = [gzip.compress(text.encode(), compresslevel=6) for text in texts]
    return Frames(kind, messages, texts, wire, source)


def _template(kind: str) -> tuple[dict[str, Any], str]:
    name = {"trade": "ws_trade.json", "depth20": "ws_depth5.json", "ticker": "ws_ticker.json"}[kind]
    fallback = {"trade": _TRADE, "depth20": _DEPTH, "ticker": _TICKER}[kind]
    path = PAYLOADS / name
    if path.exists():
        try:
            loaded = json.loads(path.read_text())
            if isinstance(loaded, dict) and "dataType" in loaded:
                return loaded, f"tests/payloads/{name}"
        except ValueError:
            pass
    return fallback, "BINGX_API.md example"


def _frame(kind: str, template: dict[str, Any], rng: random.Random, index: int) -> dict[str, Any]:
    symbol, base_price, decimals = SYMBOLS[index % len(SYMBOLS)]
    price = base_price * (1 + rng.gauss(0, 0.002))
    now_ms = 1_760_000_000_000 + index * 37
    frame = copy.deepcopy(template)
    frame["dataType"] = symbol + "@" + frame["dataType"].partition("@")[2]
    if kind == "trade":
        item = template["data"][0]
        trades = [_trade(item, symbol, price, decimals, now_ms, rng) for _ in range(rng.randint(1, 5))]
        frame["data"] = sorted(trades, key=lambda trade: -trade["T"])  # BINGX_API.md §18: newest first
    elif kind == "depth20":
        frame["dataType"] = f"{symbol}@depth20@500ms"  # the template may be depth5: levels are grown to 20
        frame["ts"] = now_ms
        frame["data"] = _book(price, decimals, rng)
    else:
        frame["data"].update(_ticker(symbol, price, decimals, now_ms, rng))
    return frame


def _trade(
    item: dict[str, Any], symbol: str, price: float, decimals: int, ms: int, rng: random.Random
) -> Any:
    trade = dict(item)
    trade.update(
        s=symbol,
        p=f"{price * (1 + rng.gauss(0, 1e-4)):.{decimals}f}",
        q=f"{rng.expovariate(5):.4f}",
        T=ms - rng.randint(0, 40),
        m=rng.random() < 0.5,
    )
    return trade


def _book(price: float, decimals: int, rng: random.Random) -> dict[str, list[list[str]]]:
    tick = 10**-decimals
    steps = list(itertools.accumulate(rng.randint(1, 3) for _ in range(40)))
    bids = [price - tick * step for step in steps[:20]]
    asks = [price + tick * step for step in steps[20:]]
    side = [[f"{p:.{decimals}f}", f"{rng.expovariate(2):.4f}"] for p in bids]
    # BINGX_API.md §20: asks descending too, best ask last
    ask_side = [[f"{p:.{decimals}f}", f"{rng.expovariate(2):.4f}"] for p in reversed(asks)]
    return {"bids": side, "asks": ask_side}


def _ticker(symbol: str, price: float, decimals: int, ms: int, rng: random.Random) -> dict[str, Any]:
    tick = 10**-decimals
    open_ = price * (1 + rng.gauss(0, 0.02))
    volume = rng.uniform(1_000, 100_000)
    return {
        "E": ms,
        "s": symbol,
        "c": f"{price:.{decimals}f}",
        "o": f"{open_:.{decimals}f}",
        "p": f"{price - open_:.{decimals}f}",
        "P": f"{(price / open_ - 1) * 100:.2f}",
        "h": f"{max(price, open_) * 1.01:.{decimals}f}",
        "l": f"{min(price, open_) * 0.99:.{decimals}f}",
        "L": f"{rng.expovariate(5):.4f}",
        "v": f"{volume:.4f}",
        "q": f"{volume * price:.2f}",
        "O": ms - 86_400_000,
        "C": ms - rng.randint(0, 500),
        "A": f"{price + tick:.{decimals}f}",
        "a": f"{rng.expovariate(1):.4f}",
        "B": f"{price:.{decimals}f}",
        "b": f"{rng.expovariate(1):.4f}",
    }
