"""Benchmark mode: replay pre-built data frames to every subscription at a target rate (or flat out).

Frames are real topic messages built from the market's past, encoded once and written in batches.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import TYPE_CHECKING

from simulator import wire
from simulator.ws_feed import feed_for

if TYPE_CHECKING:
    from simulator.ws import Client, WsServer

BATCH = 64  # frames per transport write per subscription
YIELD_S = 0.02  # the longest the writing loop keeps the event loop to itself


class Firehose:
    """`run(count, rate)` pushes `count` frames spread over current subscriptions (incrDepth excluded)."""

    def __init__(self, server: WsServer) -> None:
        self._server = server
        self._task: asyncio.Task[int] | None = None
        self._cancelled = threading.Event()  # tells the pool-building thread to give up

    def run(self, count: int, rate: float | None = None, pool_size: int = 256) -> int:
        """Block until `count` frames were written (or every subscriber left); return how many."""
        loop = self._server._loop
        if loop is None:
            raise RuntimeError("the WebSocket server is not running; call start() first")
        return asyncio.run_coroutine_threadsafe(self._start(count, rate, pool_size), loop).result()

    def cancel(self) -> None:
        self._cancelled.set()
        if self._task is not None:
            self._task.cancel()

    async def _start(self, count: int, rate: float | None, pool_size: int) -> int:
        self._cancelled.clear()
        self._task = asyncio.create_task(self._run(count, rate, pool_size))
        try:
            return await self._task
        except asyncio.CancelledError:
            return 0

    async def _run(self, count: int, rate: float | None, pool_size: int) -> int:
        server = self._server
        pairs = [
            (client, topic)
            for client in list(server.clients.values())
            for topic in sorted(client.topics)
            if "@incrDepth" not in topic  # its ids must stay a consistent sequence
        ]
        # Building pools costs ~0.1 s a topic: a worker thread does it so that Ping keeps its cadence.
        pools = await asyncio.to_thread(self._pools, sorted({topic for _, topic in pairs}), pool_size)
        pairs = [(client, topic) for client, topic in pairs if pools[topic]]
        sent, cursor, started = 0, 0, time.monotonic()
        while sent < count and pairs:
            pause = time.monotonic() + YIELD_S
            for client, topic in list(pairs):
                n = min(BATCH, count - sent)
                if n <= 0:
                    break
                sent += await self._write(client, topic, pools[topic], cursor, n)
                if time.monotonic() > pause:  # drain() rarely yields: let Ping and acks through
                    await asyncio.sleep(0)
                    pause = time.monotonic() + YIELD_S
            pairs = [(c, t) for c, t in pairs if c.id in server.clients]
            cursor += BATCH
            delay = sent / rate - (time.monotonic() - started) if rate else 0.0
            await asyncio.sleep(max(0.0, delay))
        return sent

    async def _write(self, client: Client, topic: str, pool: list[bytes], cursor: int, n: int) -> int:
        chunk = b"".join(pool[(cursor + i) % len(pool)] for i in range(n))
        if not self._server.write(client, chunk):
            return 0
        self._server.ledger.bulk(topic, client.id, n)
        await client.conn.drain()  # back-pressure: never buffer more than websockets' write limit
        return n

    def _pools(self, topics: list[str], size: int) -> dict[str, list[bytes]]:
        pools: dict[str, list[bytes]] = {}
        for topic in topics:
            pools[topic] = [] if self._cancelled.is_set() else self._pool(topic, size)
        return pools

    def _pool(self, topic_name: str, size: int) -> list[bytes]:
        from simulator import ws_topics as wt

        server = self._server
        topic = wt.parse_topic(topic_name, server.market)
        if topic is None:
            return []
        now = server.clock()
        feed = feed_for(topic, server.market, server.options.feed, now - 1)
        step = max(int(feed.period_ms), 100)
        t, frames = now - size * step * 4, list[bytes]()
        feed.start(t - step)
        while len(frames) < size and t < now:
            frames += [wire.encode(message)[1] for message in feed.build(t)]
            t += step
        return frames[:size]
