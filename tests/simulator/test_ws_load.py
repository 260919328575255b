"""1,000 topics of a 250-symbol simulator over 5 plain websocket-client connections: every topic keeps
flowing, Ping keeps its cadence on every connection, nobody is dropped, and the ledger matches the clients."""

from __future__ import annotations

import itertools
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable

import orjson
import websocket

from simulator import Simulator

SYMBOLS = [f"S{i:03d}-USDT" for i in range(250)]
PING_S = 1.0
CONNECTIONS = 5


def topics_of(index: int, symbol: str) -> list[str]:
    # Channels that push on a clock whatever the trades do, so "keeps flowing" has no luck in it.
    book = "incrDepth" if index % 4 == 0 else "ticker"
    return [f"{symbol}@markPrice", f"{symbol}@bookTicker", f"{symbol}@depth20@500ms", f"{symbol}@{book}"]


TOPICS = [topic for i, symbol in enumerate(SYMBOLS) for topic in topics_of(i, symbol)]


class Reader(threading.Thread):
    """A bare BingX client in a thread: subscribes, answers Ping, counts data frames per topic."""

    def __init__(self, url: str, topics: list[str]) -> None:
        super().__init__(daemon=True)
        self.topics = topics
        self.ws = websocket.create_connection(url, timeout=0.2)
        self.connected = time.monotonic()
        self.counts: Counter[str] = Counter()
        self.pings: list[float] = []
        self.error: Exception | None = None
        self.done = threading.Event()

    def run(self) -> None:
        for i, topic in enumerate(self.topics):
            self.ws.send(orjson.dumps({"id": str(i), "reqType": "sub", "dataType": topic}).decode())
        while not self.done.is_set():
            try:
                frame = self.ws.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except Exception as error:  # a dropped connection is what the test asserts against
                self.error = error
                return
            assert isinstance(frame, bytes), "every server frame must be binary"
            text = zlib.decompress(frame, 31)
            if text == b"Ping":
                self.pings.append(time.monotonic())
                self.ws.send("Pong")
                continue
            data_type = orjson.loads(text).get("dataType")
            if data_type:  # acks carry "" or nothing
                self.counts[data_type] += 1

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=5)
        self.ws.close()


def wait_for(condition: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def received(readers: list[Reader]) -> Counter[str]:
    total: Counter[str] = Counter()
    for reader in readers:
        total.update(dict(reader.counts))
    return total


def test_a_thousand_topics_keep_flowing_with_pings_on_time() -> None:
    with Simulator(symbols=SYMBOLS, seed=3, ping_interval_s=PING_S, trades_per_second=0.2) as sim:
        readers = [Reader(sim.ws_url, TOPICS[c::CONNECTIONS]) for c in range(CONNECTIONS)]
        try:
            for reader in readers:
                reader.start()
            # Warming 1,000 cold topics takes ~10 s of the worker's CPU here; a busy CI box needs longer.
            # Pings must stay on time throughout (checked below), which is the property under test.
            assert wait_for(lambda: len(received(readers)) == len(TOPICS), 120.0), "some topics never pushed"
            before = received(readers)

            def behind() -> list[str]:
                after = received(readers)
                return [t for t in TOPICS if after[t] - before[t] < 2]

            assert wait_for(lambda: behind() == [], 30.0), f"not pushing again: {behind()[:5]}"  # repeatedly
            sim.faults.stall()  # nothing more is written once the publish under way (if any) has been counted
            stalled = time.monotonic()

            def sent() -> list[tuple[int, int]]:
                ledger = {r.id: r for r in sim.ledger.connections}
                return [(ledger[i + 1].frames_sent, ledger[i + 1].pings_sent) for i in range(CONNECTIONS)]

            def got() -> list[tuple[int, int]]:
                return [(sum(r.counts.values()), len(r.pings)) for r in readers]

            # The ledger is re-read each time: a frame written just before the stall is counted just after it,
            # and a Ping written then may still be on its way when the last data frame has arrived.
            assert wait_for(lambda: got() == sent(), 30.0), f"readers {got()} against ledger {sent()}"
            ledger = {r.id: r for r in sim.ledger.connections}
            assert len(ledger) == CONNECTIONS
            assert received(readers) == Counter(sim.ledger.counts)
            for reader in readers:
                record = ledger[readers.index(reader) + 1]
                assert reader.error is None and record.closed_ms is None
                assert record.pings_sent == len(reader.pings)
                marks = [reader.connected, *reader.pings, stalled]
                gaps = [later - earlier for earlier, later in itertools.pairwise(marks)]
                assert max(gaps) < 3 * PING_S, f"a Ping gap of {max(gaps):.2f} s"
        finally:
            for reader in readers:
                reader.stop()
