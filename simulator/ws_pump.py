"""The WebSocket server's scheduler: builds due topic frames in a worker thread, in time-boxed rounds.

The loop only writes pre-encoded bytes, so Ping, Pong deadlines and acks never wait for market work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from simulator import wire
from simulator import ws_topics as wt
from simulator.ws_feed import Feed

if TYPE_CHECKING:
    from simulator.market import Market
    from simulator.ws import WsServer
    from simulator.ws_session import Client

log = logging.getLogger(__name__)

AHEAD_MS = 10 * 60_000  # start generating the next hour's trades this long before it begins
HOUR_MS = 3_600_000
ROUND_BUDGET_S = 0.05  # a worker round stops taking feeds after this long; the rest stay due for the next


@dataclass(frozen=True)
class Encoded:
    """A message with its JSON text and ready-to-write frame (encoded off the loop)."""

    message: wt.Message
    text: str
    frame: bytes

    @classmethod
    def of(cls, message: wt.Message) -> Encoded:
        text, frame = wire.encode(message)
        return cls(message, text, frame)


@dataclass(frozen=True)
class Built:
    feed: Feed
    frames: list[Encoded]
    snapshot: Encoded | None  # incrDepth's `all` for the clients waiting for one


def build_round(
    due: list[Feed], snapshots: list[Feed], now_ms: int, budget_s: float, spare: Callable[[], bool]
) -> list[Built]:
    """Tick due feeds and snapshot those owed one (worker thread) until the budget is spent; the rest wait.

    One cold feed a round (first use: an hour of trades, a 1,000-level book), then the warm ones, then more
    cold ones while time is left: warming up 1,000 topics neither silences the flowing ones nor stalls.
    """
    deadline = time.monotonic() + budget_s
    wanted = {id(feed) for feed in snapshots}
    feeds = [*snapshots, *(feed for feed in due if id(feed) not in wanted)]
    cold = [feed for feed in feeds if not feed.warm]
    built: list[Built] = []
    for index, feed in enumerate([*cold[:1], *(f for f in feeds if f.warm), *cold[1:]]):
        if index and time.monotonic() > deadline:
            return built
        built.extend(_build(feed, now_ms, id(feed) in wanted))
    while time.monotonic() < deadline and spare():  # idle time: work ahead
        pass
    return built


def _build(feed: Feed, now_ms: int, snapshot_wanted: bool) -> list[Built]:
    try:
        frames = [Encoded.of(m) for m in feed.tick(now_ms)] if feed.is_due(now_ms) else []
        snapshot = feed.snapshot(now_ms) if snapshot_wanted else None
    except Exception:  # one broken topic must not silence the others
        log.exception("simulator feed %s failed", feed.topic.name)
        return []
    feed.warm = True
    return [Built(feed, frames, None if snapshot is None else Encoded.of(snapshot))]


class Ahead:
    """Generates the next hour's trades of subscribed symbols in spare time before the hour turns, so that
    the turn does not make every trade, kline and ticker topic cold at once."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self.hour = -1
        self.symbols: list[str] = []

    def pending(self, now_ms: int, server: WsServer) -> bool:
        """Queue the subscribed symbols once per hour, in its last minutes; True while work is queued."""
        hour = now_ms // HOUR_MS + 1
        if hour != self.hour and now_ms >= hour * HOUR_MS - AHEAD_MS:
            self.hour = hour
            self.symbols = sorted({feed.topic.symbol for feed in server.feeds.values()})
        return bool(self.symbols)

    def step(self) -> bool:
        """Generate one symbol's next hour (worker thread); False when nothing is left."""
        if not self.symbols:
            return False
        self.market.prepare(self.symbols.pop(), self.hour * HOUR_MS)
        return True


async def pump(server: WsServer) -> None:
    """Forever: every tick, build what is due (and snapshots owed) off the loop, then write it."""
    loop = asyncio.get_running_loop()
    ahead = Ahead(server.market)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="simulator-feeds") as builder:
        while True:
            await asyncio.sleep(server.options.tick_s)
            now = server.clock()
            due = sorted((f for f in server.feeds.values() if f.is_due(now)), key=lambda f: f.due_ms)
            waiting = {name: set(clients) for name, clients in server.awaiting.items() if clients}
            snapshots = [server.feeds[name] for name in waiting if name in server.feeds]
            if not due and not snapshots and not ahead.pending(now, server):
                continue
            results = await loop.run_in_executor(
                builder, build_round, due, snapshots, now, ROUND_BUDGET_S, ahead.step
            )
            for built in results:
                try:
                    _deliver(server, built, waiting.get(built.feed.topic.name, set()), now)
                except Exception:  # the pump must outlive any one delivery, or every topic goes silent
                    log.exception("simulator could not deliver %s", built.feed.topic.name)


def _deliver(server: WsServer, built: Built, waiting: set[Client], now_ms: int) -> None:
    name = built.feed.topic.name
    if server.feeds.get(name) is not built.feed:  # unsubscribed meanwhile
        return
    if built.snapshot is not None:
        pending = server.awaiting.get(name, set())
        for client in [c for c in pending if c in waiting]:
            pending.discard(client)
            client.snapshot_ids[name] = built.snapshot.message["data"]["lastUpdateId"]
            stale = server.faults.stale_update(built.feed.topic, built.snapshot.message)
            if stale is not None:  # fault: an update before the snapshot
                server.publish(name, stale, now_ms, only=client)
            server.publish(name, built.snapshot.message, now_ms, only=client, encoded=built.snapshot)
    for frame in built.frames:
        server.publish(name, frame.message, now_ms, encoded=frame)
