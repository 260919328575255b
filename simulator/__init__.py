"""A local BingX for tests, the demo and benchmarks: a seeded Market behind real WebSocket and HTTP servers.

`with Simulator() as sim:` starts it on free ports; `sim.ledger` says what was sent, `sim.faults` breaks it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Sequence
from typing import Any

from simulator.ledger import Ledger
from simulator.ws import WsOptions, WsServer, wall_ms
from simulator.ws_feed import FeedOptions

__all__ = ["Simulator"]


class Simulator:
    """Market + WsServer + RestServer (+ optional admin endpoint) as one context manager."""

    def __init__(
        self,
        symbols: Sequence[str] = ("BTC-USDT", "ETH-USDT"),
        seed: int = 0,
        trades_per_second: float = 2.0,
        ping_interval_s: float = 5.0,
        pong_timeout_s: float = 30.0,
        rate: float = 1.0,
        host: str = "127.0.0.1",
        ws_port: int = 0,
        rest_port: int = 0,
        admin_port: int | None = None,
        ack_shape: str = "alternate",
        leak_refused: bool = False,
        incr_id_skip_max: int = 9,
        bounded_ledger: bool = False,
        ticker_window_s: float = 3600.0,
        account: Any = None,  # a simulator.account.AccountOptions: signed endpoints and the account stream
        time_scale: float = 1.0,  # the WebSocket market clock runs this many times faster than real time
        **rest_knobs: Any,
    ) -> None:
        from simulator.market import Market

        self.market = Market(symbols=symbols, seed=seed, trades_per_second=trades_per_second)
        self.ledger = Ledger(bounded=bounded_ledger)
        options = WsOptions(
            ping_interval_s=ping_interval_s,
            pong_timeout_s=pong_timeout_s,
            ack_shape=ack_shape,
            leak_refused=leak_refused,
            feed=FeedOptions(
                rate=rate,
                incr_id_skip_max=incr_id_skip_max,
                seed=seed,
                ticker_window_ms=round(ticker_window_s * 1000),  # BingX: 86400 (costs a day of trades)
            ),
        )
        clock = wall_ms if time_scale == 1.0 else scaled_clock(time_scale)
        self.ws = WsServer(
            self.market, host=host, port=ws_port, options=options, ledger=self.ledger, clock=clock
        )
        self.faults = self.ws.faults
        self.account: Any = None
        if account is not None:
            from simulator.account import Account
            from simulator.ws_account import AccountStreams

            self.account = Account(self.market, account)
            self.ws.account = AccountStreams(self.ws, self.account)
            rest_knobs = {**rest_knobs, "account": self.account}
        self.rest: Any = _rest_server(self.market, host, rest_port, rest_knobs)
        self.host, self.admin_port = host, admin_port
        self.admin: Any = None

    @property
    def ws_url(self) -> str:
        return self.ws.url

    @property
    def rest_url(self) -> str | None:
        return None if self.rest is None else str(self.rest.url)

    @property
    def admin_url(self) -> str | None:
        return None if self.admin is None else str(self.admin.url)

    @property
    def rest_ledger(self) -> Any:
        return self.ledger.rest

    def true_book(self, symbol: str, t_ms: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """The full book (1,000 levels a side, best first) every real incrDepth frame with time `t_ms` shows.

        The book changes every 100 ms, so this is the true book at any update id, given that update's time.
        """
        from simulator.ws_feed import INCR_LEVELS

        return self.market.book(symbol, t_ms, INCR_LEVELS)

    def firehose(self, count: int, rate: float | None = None, pool_size: int = 256) -> int:
        """Replay `count` pre-built data frames over the current subscriptions (benchmarks); blocks."""
        return self.ws.firehose.run(count, rate, pool_size)

    def start(self) -> Simulator:
        """Start every server; return self once all accept connections."""
        self.ws.start()
        try:
            if self.rest is not None:
                self.rest.start()
                self.ledger.rest = getattr(self.rest, "ledger", None)
                self.faults.rest = getattr(self.rest, "faults", None)
            if self.account is not None:
                self.account.start()
            if self.admin_port is not None:
                from simulator.admin import AdminServer

                self.admin = AdminServer(self, self.host, self.admin_port)
                self.admin.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every server that was started; safe to call twice."""
        if self.admin is not None:
            self.admin.stop()
            self.admin = None
        if self.account is not None:
            self.account.stop()
        if self.rest is not None:
            self.rest.stop()
        self.ws.stop()

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def scaled_clock(scale: float) -> Callable[[], int]:
    """A market clock that starts now and runs `scale` times faster: minutes of market in seconds."""
    import time

    start_wall, start_ms = time.monotonic(), wall_ms()
    return lambda: start_ms + int((time.monotonic() - start_wall) * 1000 * scale)


def _rest_server(market: Any, host: str, port: int, knobs: dict[str, Any]) -> Any:
    # simulator/rest.py is written by another helper; until it lands the facade serves WebSocket only.
    if importlib.util.find_spec("simulator.rest") is None:
        if knobs:
            raise TypeError(f"unknown Simulator arguments: {', '.join(sorted(knobs))}")
        return None
    from simulator.rest import RestServer

    return RestServer(market, host=host, port=port, **knobs)
