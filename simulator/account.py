"""A simulated trader's account: balance, positions, orders that fill, income (fees, realized PnL, funding at
each settlement), listenKeys, and the ledger of every account event generated and whom it reached.

Thread-safe. The lock is never held while events are pushed: the WebSocket loop may need it meanwhile.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from simulator.account_wire import account_update, order_update, position_row
from simulator.market import Market

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
WEEK_MS = 7 * DAY_MS
RETENTION_MS = 90 * DAY_MS  # "Only keep the last 3 months data" (income, SEED)
FEE_RATE = Decimal("0.0005")  # taker; the commission-rate endpoint says the same
MAKER_RATE = Decimal("0.0002")
_Q = Decimal("0.00000001")


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class AccountOptions:
    """Knobs of the simulated account. The key and secret are test values, never real credentials."""

    api_key: str = field(default="sim-api-key-7d1c", repr=False)  # never in a repr, a log or test output
    secret: str = field(default="sim-api-secret-4b2e9a", repr=False)
    history_days: float = 20.0  # income history before the simulator started (fills + funding)
    fills_per_day: int = 24
    fill_every_s: float | None = None  # live: an order fills this often (None: no live trading)
    settle_every_s: float | None = None  # live funding cadence (None: the market's settlement instants)
    listen_key_ttl_s: float = 3600.0  # BingX: 60 minutes, extended by PUT
    listen_key_shape: str = "wrapped"  # POST answer: "wrapped" (DOCS-2025) or "bare" (older docs, JK)
    start_balance: str = "10000"
    quantity: str = "0.01"


@dataclass(frozen=True)
class AccountEvent:
    """One account stream event as generated, and the listenKeys (short hashes) whose sockets got it."""

    seq: int
    time_ms: int
    message: dict[str, Any]
    delivered_to: tuple[str, ...]
    income_ids: tuple[str, ...]  # tranIds of the income rows that record the same money movement


@dataclass
class _Position:
    quantity: Decimal = Decimal(0)  # signed: > 0 long, < 0 short
    entry: Decimal = Decimal(0)


@dataclass
class Account:
    market: Market
    options: AccountOptions = field(default_factory=AccountOptions)
    clock_ms: Callable[[], int] = wall_ms
    # Delivers an event to every socket whose listenKey is valid; returns their short hashes (set by the WS).
    pusher: Callable[[dict[str, Any]], tuple[str, ...]] | None = None

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.income: list[dict[str, Any]] = []  # wire-shaped, ascending by time
        self.events: list[AccountEvent] = []
        self.listen_keys: dict[str, int] = {}  # key -> expiry, epoch ms
        self.expired_notified: set[str] = set()
        self.on_expired: Callable[[str], None] | None = None  # the WS side tells that key's sockets
        self.balance = Decimal(self.options.start_balance)
        self.positions: dict[str, _Position] = {s: _Position() for s in self.market.symbols}
        self.leverage: dict[str, int] = dict.fromkeys(self.market.symbols, 10)
        self._ids = 1_900_000_000_000_000_000  # order ids beyond 2^53: they must never pass through a float
        self._fills = 0
        self._last_event_ms = 0
        self.paused = False  # the knob: no live fills or settlements while set
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seed_history(self.clock_ms())

    # ---- history and live activity ----

    def _seed_history(self, now_ms: int) -> None:
        start = now_ms - round(self.options.history_days * DAY_MS)
        self._income(start, "", "TRANSFER", Decimal(self.options.start_balance), "deposit", "")
        step = max(1, DAY_MS // max(1, self.options.fills_per_day))
        t, settle = start + step, self._next_settlement(start)
        while t < now_ms - step:
            while settle <= t:
                self._settle(settle)
                settle = self._next_settlement(settle)
            self._fill(t)
            t += step

    def _next_settlement(self, t_ms: int) -> int:
        return self.market.next_funding_ms(self.market.symbols[0], t_ms)

    def _fill(self, t_ms: int) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
        """Open or close a position on the next symbol at the mark price; return the stream events."""
        symbols = self.market.symbols
        symbol = symbols[(self._fills // 2) % len(symbols)]
        opening = self._fills % 2 == 0
        self._fills += 1
        position = self.positions[symbol]
        quantity = Decimal(self.options.quantity)
        price = Decimal(self.market.mark_price(symbol, t_ms))
        side = "BUY" if opening else "SELL"
        self._ids += 1
        order_id = str(self._ids)
        fee = -(price * quantity * FEE_RATE).quantize(_Q)
        ids = [self._income(t_ms, symbol, "TRADING_FEE", fee, "fee", order_id)]
        realized = Decimal(0)
        if opening:
            position.quantity, position.entry = quantity, price
        else:
            realized = ((price - position.entry) * position.quantity).quantize(_Q)
            ids.append(self._income(t_ms, symbol, "REALIZED_PNL", realized, "close", order_id))
            position.quantity, position.entry = Decimal(0), Decimal(0)
        order = order_update(symbol, order_id, side, quantity, price, fee, realized, t_ms)
        update = account_update(
            "ORDER", self.balance, fee + realized, t_ms, symbol, position.quantity, position.entry
        )
        return [(order, ()), (update, tuple(ids))]

    def _settle(self, t_ms: int) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
        """Pay or receive funding on every open position at a settlement instant."""
        events: list[tuple[dict[str, Any], tuple[str, ...]]] = []
        for symbol, position in self.positions.items():
            if position.quantity == 0:
                continue
            rate = Decimal(self.market.estimated_funding_rate(symbol, t_ms - 1))
            notional = Decimal(self.market.mark_price(symbol, t_ms)) * position.quantity
            fee = -(notional * rate).quantize(_Q)
            tran = self._income(t_ms, symbol, "FUNDING_FEE", fee, "funding fee", "")
            update = account_update("FUNDING_FEE", self.balance, fee, t_ms, None, None, None)
            events.append((update, (tran,)))
        return events

    def _income(self, t_ms: int, symbol: str, kind: str, amount: Decimal, info: str, trade: str) -> str:
        self._ids += 1
        tran = str(self._ids)
        self.balance += amount
        self.income.append(
            {
                "symbol": symbol,
                "incomeType": kind,
                "income": format(amount, "f"),
                "asset": "USDT",
                "info": info,
                "time": t_ms,
                "tranId": tran,
                "tradeId": trade,
            }
        )
        return tran

    def start(self) -> None:
        """Start live trading and funding (if the options ask for it) and listenKey expiry checks."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="simulator-account", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def _run(self) -> None:
        options = self.options
        now = self.clock_ms()
        next_fill = now + round((options.fill_every_s or 0) * 1000)
        settle_ms = round((options.settle_every_s or 0) * 1000)
        next_settle = now + settle_ms if settle_ms else self._next_settlement(now)
        while not self._stop.wait(0.02):
            now = self.clock_ms()
            self._expire_due(now)
            if self.paused:
                continue
            if options.fill_every_s is not None and now >= next_fill:
                next_fill = now + round(options.fill_every_s * 1000)
                self.trade()
            if now >= next_settle:
                next_settle = now + settle_ms if settle_ms else self._next_settlement(now)
                self.settle()

    def trade(self) -> None:
        """One order fills now: ORDER_TRADE_UPDATE and ACCOUNT_UPDATE are pushed, income recorded."""
        with self.lock:
            events = self._fill(self._event_ms())
        self._push(events)

    def settle(self) -> None:
        """A funding settlement now: FUNDING_FEE income and an ACCOUNT_UPDATE for each open position."""
        with self.lock:
            events = self._settle(self._event_ms())
        self._push(events)

    def configure(self, symbol: str, leverage: int) -> None:
        """Change a symbol's leverage: an ACCOUNT_CONFIG_UPDATE is pushed."""
        with self.lock:
            self.leverage[symbol] = leverage
            event = {
                "e": "ACCOUNT_CONFIG_UPDATE",
                "E": self._event_ms(),
                "ac": {"s": symbol, "l": leverage, "S": leverage, "mt": "cross"},
            }
        self._push([(event, ())])

    def _event_ms(self) -> int:
        # Strictly increasing: two events never share E, so the ledger and the lake can be matched exactly.
        self._last_event_ms = max(self.clock_ms(), self._last_event_ms + 1)
        return self._last_event_ms

    def _push(self, events: list[tuple[dict[str, Any], tuple[str, ...]]]) -> None:
        for message, income_ids in events:
            delivered = self.pusher(message) if self.pusher is not None else ()
            with self.lock:
                self.events.append(
                    AccountEvent(len(self.events), int(message["E"]), message, delivered, income_ids)
                )

    # ---- listenKeys ----

    def create_listen_key(self) -> str:
        key = secrets.token_hex(32)
        with self.lock:
            self.listen_keys[key] = self.clock_ms() + round(self.options.listen_key_ttl_s * 1000)
        return key

    def extend_listen_key(self, key: str) -> bool:
        with self.lock:
            if not self.is_valid(key):
                return False
            self.listen_keys[key] = self.clock_ms() + round(self.options.listen_key_ttl_s * 1000)
            return True

    def delete_listen_key(self, key: str) -> bool:
        with self.lock:
            return self.listen_keys.pop(key, None) is not None

    def is_valid(self, key: str) -> bool:
        expires = self.listen_keys.get(key)
        return expires is not None and expires > self.clock_ms() and key not in self.expired_notified

    def expire_listen_keys(self) -> int:
        """The knob: expire every live listenKey now (their sockets get listenKeyExpired); return how many."""
        with self.lock:
            live = [key for key in self.listen_keys if self.is_valid(key)]
            for key in live:
                self.listen_keys[key] = self.clock_ms()
        self._expire_due(self.clock_ms() + 1)
        return len(live)

    def _expire_due(self, now_ms: int) -> None:
        with self.lock:
            due = [k for k, t in self.listen_keys.items() if t < now_ms and k not in self.expired_notified]
            self.expired_notified.update(due)
        for key in due:
            if self.on_expired is not None:
                self.on_expired(key)

    # ---- REST views ----

    def income_between(self, start_ms: int, end_ms: int) -> list[dict[str, Any]]:
        """Income rows with start <= time <= end, newest first (the CCXT 2026 capture's order)."""
        floor = self.clock_ms() - RETENTION_MS
        with self.lock:
            found = [dict(r) for r in self.income if max(start_ms, floor) <= r["time"] <= end_ms]
        return found[::-1]

    def balances(self) -> list[dict[str, Any]]:
        with self.lock:
            unrealized = sum((self._unrealized(s) for s in self.positions), Decimal(0))
            balance = self.balance.quantize(_Q)
        equity = (balance + unrealized).quantize(_Q)
        return [
            {
                "userId": "1341158271307522053",
                "asset": "USDT",
                "balance": format(balance, "f"),
                "equity": format(equity, "f"),
                "unrealizedProfit": format(unrealized.quantize(_Q), "f"),
                "realisedProfit": "0",
                "availableMargin": format(equity, "f"),
                "usedMargin": "0.0000",
                "freezedMargin": "0.0000",
                "shortUid": "25307298",
            }
        ]

    def open_positions(self, symbol: str | None) -> list[dict[str, Any]]:
        now = self.clock_ms()
        with self.lock:
            held = [(s, p.quantity, p.entry) for s, p in self.positions.items() if p.quantity != 0]
        return [
            position_row(s, quantity, entry, Decimal(self.market.mark_price(s, now)), self.leverage[s], now)
            for s, quantity, entry in held
            if symbol in (None, s)
        ]

    def _unrealized(self, symbol: str) -> Decimal:
        position = self.positions[symbol]
        if position.quantity == 0:
            return Decimal(0)
        mark = Decimal(self.market.mark_price(symbol, self.clock_ms()))
        return (mark - position.entry) * position.quantity
