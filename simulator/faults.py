"""Fault injection knobs for the WebSocket side, callable from any thread (tests, the admin endpoint).

Each knob has an effect a client can observe; the REST server's own knobs hang off `.rest`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from simulator import wire
from simulator import ws_topics as wt
from simulator.ledger import GarbageFrame
from simulator.ws_feed import IncrDepthFeed

if TYPE_CHECKING:
    from simulator.market import Market
    from simulator.ws import WsServer

GARBAGE_KINDS = ("bad_gzip", "bad_json", "unknown_datatype", "missing_fields")


class UnknownFault(ValueError):
    """A garbage kind or fault name the simulator does not know."""


class WsFaults:
    """Knobs: drop, stop_ping, stall, mute, garbage, incr_skip/_repeat/_lose/_backward/_cross/_early; `clear`
    undoes the sticky ones."""

    def __init__(self, server: WsServer) -> None:
        self._server = server
        self.ping_stopped = False
        self.stalled = False
        self.refuse_until_ms = 0  # handshakes before this market time are refused (outage)
        self.rest: Any = None  # the RestServer's faults, attached by the Simulator
        self.early: dict[str | None, int] = {}  # symbol (None: any) -> stale updates owed before an `all`
        self.muted: set[str] = set()  # topics whose frames are not sent (the socket and the rest flow)

    def drop(self) -> int:
        """Abort every connection without a close frame (client sees 1006); return how many."""
        return self._server.call(drop_all, self._server, "fault: drop")

    def outage(self, seconds: float) -> int:
        """Drop every connection and refuse new ones for `seconds` (HTTP 503); return how many dropped."""
        self.refuse_until_ms = self._server.clock() + round(seconds * 1000)
        self._server.log_fault("outage", f"{seconds:g} s")
        return self.drop()

    def stop_ping(self, on: bool = True) -> None:
        """Stop (or resume) sending Ping; the Pong deadline is suspended meanwhile."""
        self.ping_stopped = on
        self._server.log_fault("stop_ping", str(on))

    def stall(self, on: bool = True) -> None:
        """Keep sockets open but send nothing at all (no Ping, acks or data) until stall(False)."""
        self.stalled = on
        self._server.log_fault("stall", str(on))

    def mute(self, topic: str, on: bool = True) -> None:
        """Stop (or resume) sending one topic's frames while the socket, Pings and other topics go on."""
        if on:
            self.muted.add(topic)
        else:
            self.muted.discard(topic)
        self._server.log_fault("mute", f"{topic} {on}")

    def garbage(self, kind: str, topic: str | None = None) -> int:
        """Send one malformed frame of `kind` to every connection; return how many got it."""
        kind = kind.replace("-", "_")
        if kind not in GARBAGE_KINDS:
            raise UnknownFault(f"unknown garbage kind {kind!r}; use one of {', '.join(GARBAGE_KINDS)}")
        return self._server.call(send_garbage, self._server, kind, topic)

    def incr_skip(self, count: int = 1, symbol: str | None = None) -> None:
        """Withhold the next `count` incrDepth updates (a real loss: ids jump, the book diverges)."""
        self._server.call(set_incr_fault, self._server, "withhold", count, symbol)

    def incr_repeat(self, count: int = 1, symbol: str | None = None) -> None:
        """Send each of the next `count` incrDepth updates twice (the copy has id == last)."""
        self._server.call(set_incr_fault, self._server, "repeat", count, symbol)

    def incr_lose(self, count: int = 1, symbol: str | None = None) -> None:
        """Withhold the next `count` updates that change one of the 5 best levels (a loss depth shows)."""
        self._server.call(set_incr_fault, self._server, "withhold_top", count, symbol)

    def incr_backward(self, count: int = 1, symbol: str | None = None) -> None:
        """Send each of the next `count` updates after the one that follows it (its id steps back)."""
        self._server.call(set_incr_fault, self._server, "backward", count, symbol)

    def incr_cross(self, count: int = 1, symbol: str | None = None) -> None:
        """Send `count` extra updates that put a bid at the best ask (a crossed book; not the true book)."""
        self._server.call(set_incr_fault, self._server, "cross", count, symbol)

    def incr_early(self, count: int = 1, symbol: str | None = None) -> None:
        """Give the next `count` new incrDepth subscribers (of `symbol`, or any) a stale update before
        their `all` snapshot. Kept here, not on a feed: a resubscribe makes a new feed."""
        self._server.call(_add_early, self, count, symbol)

    def stale_update(self, topic: wt.Topic, snapshot: wt.Message) -> wt.Message | None:
        """The stale update owed before this `all` (fault incr_early), or None. Loop thread only."""
        for key in (topic.symbol, None):
            if self.early.get(key, 0) > 0:
                self.early[key] -= 1
                data = snapshot["data"]
                bids = [(str(price), str(qty)) for price, qty in data["bids"][:1]]
                return wt.incr_depth_message(topic, "update", data["lastUpdateId"], data["time"], bids, [])
        return None

    def clear(self) -> None:
        """Resume Ping and data after stop_ping/stall/mute."""
        self.stop_ping(False)
        self.stall(False)
        for topic in sorted(self.muted):
            self.mute(topic, False)


# Run on the loop thread (through WsServer.call), never directly from another thread.


def drop_all(server: WsServer, reason: str) -> int:
    clients = list(server.clients.values())
    for client in clients:
        server.abort(client, reason)
    server.log_fault("drop", f"{len(clients)} connections")
    return len(clients)


def send_garbage(server: WsServer, kind: str, topic: str | None) -> int:
    symbol = topic.partition("@")[0] if topic else server.market.symbols[0]
    now = server.clock()
    data = garbage_payload(kind, server.market, symbol, now)
    frame = wire.encode_raw(data)
    sent = tuple(client.id for client in list(server.clients.values()) if server.write(client, frame))
    server.ledger.garbage(GarbageFrame(kind, now, data, sent))
    return len(sent)


def _add_early(faults: WsFaults, count: int, symbol: str | None) -> None:
    faults.early[symbol] = faults.early.get(symbol, 0) + count
    faults._server.log_fault("incr_early", f"{count} {symbol or 'all symbols'}")


def set_incr_fault(server: WsServer, what: str, count: int, symbol: str | None) -> None:
    for feed in server.feeds.values():
        if isinstance(feed, IncrDepthFeed) and symbol in (None, feed.topic.symbol):
            setattr(feed, what, getattr(feed, what) + count)
    server.log_fault(f"incr_{what}", f"{count} {symbol or 'all symbols'}")


def garbage_payload(kind: str, market: Market, symbol: str, now_ms: int) -> bytes:
    """Return the bytes of one malformed frame payload (what goes inside the WebSocket frame)."""
    if kind == "bad_gzip":
        return b"\x1f\x8b\x08\x00" + b"this is not deflate data"
    if kind == "bad_json":
        return wire.gzip_member(b'{"code":0,"dataType":"' + symbol.encode() + b'@trade","data":[{"q":')
    if kind == "unknown_datatype":
        return wire.gzip_member(wire.encode(wt.unknown_topic_message(symbol))[0].encode())
    topic = wt.Topic(f"{symbol}@trade", symbol, "trade")
    trades = market.trades(symbol, now_ms - 600_000, now_ms)[-3:]
    message = wt.trade_message(topic, trades)
    items = message["data"] or [{"q": "1", "T": now_ms, "m": False, "s": symbol}]
    message["data"] = [{k: v for k, v in item.items() if k != "p"} for item in items]
    return wire.gzip_member(wire.encode(message)[0].encode())
