"""ccxt's BingX WebSocket handlers, run offline for comparison. ccxt is a bench-only tool, never a dependency.

It is installed on first use into bench/results/.cache/ccxt (pip --target), so the shared venv stays as the
project declares it; a ccxt already importable from the venv is used as is.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.harness import CACHE

TARGET = CACHE / "ccxt"
SWAP_URL = "wss://open-api-swap.bingx.com/swap-market"  # ccxt picks swap parsing when "swap" is in the url
HANDLERS = {"trade": "handle_trades", "depth20": "handle_order_book", "ticker": "handle_ticker"}


class Unavailable(Exception):
    """ccxt could not be installed, imported or run offline; the message says why."""


class Client:
    """The least of ccxt's ws Client the handlers touch: url, subscriptions and resolve()."""

    url = SWAP_URL

    def __init__(self) -> None:
        self.subscriptions: dict[str, Any] = {}
        self.resolved = 0

    def resolve(self, result: object, message_hash: object = None) -> object:
        self.resolved += 1
        return result


def load(allow_install: bool = True, target: Path = TARGET) -> Any:
    """Import ccxt (installing it into the bench cache if allowed); raise Unavailable with the reason."""
    if str(target) not in sys.path and target.exists():
        sys.path.append(str(target))
    try:
        return importlib.import_module("ccxt")
    except ImportError as error:
        if not allow_install:
            raise Unavailable(f"ccxt is not installed ({error})") from error
    command = [sys.executable, "-m", "pip", "install", "-q", "--target", str(target), "ccxt"]
    try:
        subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)
    except (subprocess.SubprocessError, OSError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        raise Unavailable(f"pip install ccxt failed: {detail.strip()[-200:]}") from error
    if str(target) not in sys.path:
        sys.path.append(str(target))
    importlib.invalidate_caches()
    try:
        return importlib.import_module("ccxt")
    except ImportError as error:
        raise Unavailable(f"ccxt installed but not importable: {error}") from error


def exchange(ccxt: Any, symbols: list[str]) -> Any:
    """A ccxt.pro bingx with markets set from a static list: no network at all."""
    instance = importlib.import_module("ccxt.pro").bingx({"newUpdates": True})
    instance.set_markets([_market(symbol) for symbol in symbols])
    return instance


def handler(instance: Any, kind: str) -> Callable[[Client, dict[str, Any]], None]:
    """The ccxt method that handles one kind of frame."""
    method: Callable[[Client, dict[str, Any]], None] = getattr(instance, HANDLERS[kind])
    return method


def wire_decoder(ccxt: Any) -> tuple[Callable[[bytes], str], Callable[[str], Any]]:
    """ccxt's own gunzip and JSON parser, as its ws Client uses them on a binary frame."""
    functions = importlib.import_module("ccxt.async_support.base.ws.functions")
    client = importlib.import_module("ccxt.async_support.base.ws.client")
    return functions.gunzip, client.json_parser.loads


def _market(market_id: str) -> dict[str, Any]:
    base, quote = market_id.split("-")
    return {
        "id": market_id,
        "symbol": f"{base}/{quote}:{quote}",
        "base": base,
        "quote": quote,
        "settle": quote,
        "baseId": base,
        "quoteId": quote,
        "settleId": quote,
        "type": "swap",
        "spot": False,
        "margin": False,
        "swap": True,
        "future": False,
        "option": False,
        "active": True,
        "contract": True,
        "linear": True,
        "inverse": False,
        "contractSize": 1.0,
        "precision": {"amount": 0.0001, "price": 0.1},
        "limits": {"amount": {}, "price": {}, "cost": {}, "leverage": {}},
        "info": {},
    }
