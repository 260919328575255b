"""The simulator's WebSocket side, driven by plain websocket-client: shapes, quirks, acks and caps."""

from __future__ import annotations

import itertools
import json
import time
import zlib
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import websocket

from simulator.market import Market
from simulator.ws import WsOptions, WsServer
from simulator.ws_feed import FeedOptions

PAYLOADS = Path(__file__).parent.parent / "payloads"
SYMBOL = "BTC-USDT"


class Client:
    """A bare BingX client: gunzips every frame, answers Ping unless told not to, keeps what it got."""

    def __init__(self, url: str, pong: bool = True) -> None:
        self.ws = websocket.create_connection(url, timeout=5)
        self.pong, self.pings, self.ids = pong, 0, 0
        self.raw: list[bytes] = []
        self.backlog: list[Any] = []  # data that arrived while waiting for an ack

    def sub(self, topic: str, kind: str = "sub") -> str:
        self.ids += 1
        self.ws.send(json.dumps({"id": str(self.ids), "reqType": kind, "dataType": topic}))
        return str(self.ids)

    def recv(self, timeout: float = 3.0) -> Any:
        """Return the next non-Ping message parsed (or its raw text if it is not JSON)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:  # Pings alone never end a wait
                raise websocket.WebSocketTimeoutException("no data frame in time")
            self.ws.settimeout(left)
            frame = self.ws.recv()
            assert isinstance(frame, bytes), "every server frame must be binary"
            self.raw.append(frame)
            text = zlib.decompress(frame, 31).decode()
            if text == "Ping":
                self.pings += 1
                if self.pong:
                    self.ws.send("Pong")
                continue
            return json.loads(text)

    def collect(self, seconds: float) -> list[Any]:
        """Everything (but Ping) received so far and during `seconds`."""
        end, got = time.monotonic() + seconds, self.backlog
        self.backlog = []
        while (left := end - time.monotonic()) > 0:
            try:
                got.append(self.recv(timeout=left))
            except websocket.WebSocketTimeoutException:
                break
        return got

    def collect_until(self, topic: str, frames: int, seconds: float = 10.0) -> list[Any]:
        """Data frames of `topic` until there are `frames` of them (trades come at random times)."""
        end, got = time.monotonic() + seconds, by_topic(self.backlog, topic)
        self.backlog = []
        while len(got) < frames and time.monotonic() < end:
            got += by_topic(self.collect(0.2), topic)
        return got

    def reply(self, request_id: str) -> Any:
        """Skip data frames until the ack for `request_id`."""
        while True:
            message = self.recv()
            if message.get("id") == request_id:
                return message
            self.backlog.append(message)

    def close(self) -> None:
        self.ws.close()


@pytest.fixture(scope="module")
def market() -> Market:
    warm = Market(symbols=(SYMBOL, "ETH-USDT"), seed=7)
    warm.ticker(SYMBOL, int(time.time() * 1000))  # builds today's and yesterday's tapes once per module
    return warm


@pytest.fixture
def server(market: Market, request: pytest.FixtureRequest) -> Iterator[WsServer]:
    knobs = getattr(request, "param", {})
    feed = FeedOptions(rate=knobs.pop("rate", 5.0), seed=7)
    options = WsOptions(ping_interval_s=0.2, pong_timeout_s=1.0, feed=feed, **knobs)
    with WsServer(market, options=options) as ws_server:
        yield ws_server


@pytest.fixture
def client(server: WsServer) -> Iterator[Client]:
    bingx = Client(server.url)
    yield bingx
    bingx.close()


def shape(value: Any) -> Any:
    """Key sets and JSON types, recursively (lists by their first element)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def by_topic(messages: list[Any], topic: str) -> list[Any]:
    return [m for m in messages if m.get("dataType") == topic]


TOPIC_PAYLOADS = {
    f"{SYMBOL}@trade": "ws_trade.json",
    f"{SYMBOL}@kline_1m": "ws_kline_1m.json",
    f"{SYMBOL}@depth5@500ms": "ws_depth5.json",
    f"{SYMBOL}@ticker": "ws_ticker.json",
    f"{SYMBOL}@bookTicker": "ws_book_ticker.json",
    f"{SYMBOL}@markPrice": "ws_mark_price.json",
    f"{SYMBOL}@lastPrice": "ws_last_price.json",
}


def test_every_topic_matches_the_recorded_payload_shape(client: Client) -> None:
    for topic in [*TOPIC_PAYLOADS, f"{SYMBOL}@incrDepth"]:
        assert client.reply(client.sub(topic))["code"] == 0
    messages = client.collect(1.5)
    if not by_topic(messages, f"{SYMBOL}@trade"):  # trades come at random times, ~2/s
        messages += client.collect_until(f"{SYMBOL}@trade", 1)
    for topic, name in TOPIC_PAYLOADS.items():
        frames = by_topic(messages, topic)
        assert frames, topic
        expected = shape(json.loads((PAYLOADS / name).read_text()))
        expected["dataType"] = "str"
        assert all(shape(frame) == expected for frame in frames), topic
    incr = by_topic(messages, f"{SYMBOL}@incrDepth")
    assert shape(incr[0]) == shape(json.loads((PAYLOADS / "ws_incr_depth_all.json").read_text()))
    update = json.loads((PAYLOADS / "ws_incr_depth_update.json").read_text())
    assert all(
        shape(frame) == shape(update) for frame in incr[1:] if frame["data"]["bids"] and frame["data"]["asks"]
    )


def test_acks_alternate_between_the_long_and_the_short_shape(client: Client) -> None:
    first = client.reply(client.sub(f"{SYMBOL}@markPrice"))
    second = client.reply(client.sub(f"{SYMBOL}@lastPrice"))
    assert first == {"id": "1", "code": 0, "msg": "", "dataType": "", "data": None}
    assert second == {"id": "2", "code": 0, "msg": ""}
    assert client.reply(client.sub(f"{SYMBOL}@markPrice", "unsub"))["code"] == 0


def test_trade_frames_are_newest_first_without_ids_and_equal_the_market_tape(
    client: Client, market: Market
) -> None:
    client.reply(client.sub(f"{SYMBOL}@trade"))
    frames = client.collect_until(f"{SYMBOL}@trade", 5)
    assert len(frames) >= 5
    for frame in frames:
        times = [item["T"] for item in frame["data"]]
        assert times == sorted(times, reverse=True)
        assert all(set(item) == {"q", "p", "T", "m", "s"} for item in frame["data"])
    streamed = [(t["T"], t["p"], t["q"], t["m"]) for frame in frames for t in reversed(frame["data"])]
    first, last = streamed[0][0], streamed[-1][0]
    tape = [(t.time_ms, t.price, t.qty, t.is_buyer_maker) for t in market.trades(SYMBOL, first, last + 1)]
    assert streamed == tape  # every trade of the window exactly once, none twice


def test_depth_asks_are_descending_with_the_best_ask_last(client: Client) -> None:
    client.reply(client.sub(f"{SYMBOL}@depth20@500ms"))
    frames = by_topic(client.collect(0.8), f"{SYMBOL}@depth20@500ms")
    assert len(frames) >= 3
    for frame in frames:
        bids = [Decimal(p) for p, _ in frame["data"]["bids"]]
        asks = [Decimal(p) for p, _ in frame["data"]["asks"]]
        assert len(bids) == len(asks) == 20 and isinstance(frame["ts"], int)
        assert bids == sorted(bids, reverse=True) and asks == sorted(asks, reverse=True)
        assert asks[-1] > bids[0]


def apply(book: dict[str, dict[Decimal, str]], data: dict[str, Any]) -> None:
    for side in ("bids", "asks"):
        for price, qty in data[side]:
            if Decimal(qty) == 0:
                book[side].pop(Decimal(price), None)
            else:
                book[side][Decimal(price)] = qty


def test_incr_depth_sends_one_snapshot_then_diffs_that_rebuild_the_market_book(
    client: Client, market: Market
) -> None:
    client.reply(client.sub(f"{SYMBOL}@incrDepth"))
    frames = [f["data"] for f in by_topic(client.collect(1.5), f"{SYMBOL}@incrDepth")]
    snapshot, updates = frames[0], frames[1:]
    assert snapshot["action"] == "all" and len(snapshot["bids"]) == len(snapshot["asks"]) == 1000
    asks = [Decimal(p) for p, _ in snapshot["asks"]]
    assert asks == sorted(asks)
    assert len(updates) >= 10 and {u["action"] for u in updates} == {"update"}
    ids = [snapshot["lastUpdateId"]] + [u["lastUpdateId"] for u in updates]
    steps = [b - a for a, b in itertools.pairwise(ids)]
    assert steps[0] == 1 and all(1 <= s <= 9 for s in steps) and any(s > 1 for s in steps)
    for update in updates:
        for side in ("bids", "asks"):  # update arrays: bids descending, asks descending (worst first)
            prices = [Decimal(p) for p, _ in update[side]]
            assert prices == sorted(prices, reverse=True)
    book = {side: {Decimal(p): q for p, q in snapshot[side]} for side in ("bids", "asks")}
    for update in updates:
        apply(book, update)
    bids, asks_ = market.book(SYMBOL, updates[-1]["time"], 1000)
    assert book == {"bids": {Decimal(p): q for p, q in bids}, "asks": {Decimal(p): q for p, q in asks_}}
    deleted = [q for u in updates for p, q in u["bids"] + u["asks"] if Decimal(q) == 0]
    assert deleted and all(q == "0.0000" for q in deleted)


def test_kline_frames_repeat_the_open_bar_with_its_open_time(client: Client, market: Market) -> None:
    client.reply(client.sub(f"{SYMBOL}@kline_1m"))
    frames = client.collect_until(f"{SYMBOL}@kline_1m", 2)  # the first comes once its tape is generated
    assert len(frames) >= 2 and all(f["s"] == SYMBOL and len(f["data"]) == 1 for f in frames)
    bars = [f["data"][0] for f in frames]
    assert all(bar["T"] % 60_000 == 0 and "closed" not in bar for bar in bars)
    last = bars[-1]
    previous, bar = market.klines(SYMBOL, "1m", last["T"] - 60_000, last["T"] + 1)
    assert Decimal(last["v"]) <= Decimal(bar.volume)
    # A frame sent before the bar's first trade opens (and closes) at the previous bar's close.
    assert last["o"] == (bar.open if Decimal(last["v"]) else previous.close)


@pytest.mark.parametrize(
    "topic", ["NOPE-USDT@trade", "btc-usdt@trade", f"{SYMBOL}@nope", f"{SYMBOL}@depth30@200ms"]
)
def test_unknown_topics_get_80015(client: Client, topic: str) -> None:
    reply = client.reply(client.sub(topic))
    assert reply == {"id": "1", "code": 80015, "msg": "dataType not support", "dataType": "", "data": None}


def test_a_paused_contract_gets_80015(server: WsServer, client: Client) -> None:
    server.market.pause("ETH-USDT")
    try:
        assert client.reply(client.sub("ETH-USDT@trade"))["code"] == 80015
    finally:
        server.market.pause("ETH-USDT", False)


def test_arrays_and_unknown_text_get_no_reply_and_duplicates_one_stream(
    client: Client, server: WsServer
) -> None:
    client.ws.send(json.dumps({"id": "x", "reqType": "sub", "dataType": [f"{SYMBOL}@trade"]}))
    client.ws.send("hello")
    assert client.reply(client.sub(f"{SYMBOL}@markPrice"))["code"] == 0
    assert client.reply(client.sub(f"{SYMBOL}@markPrice"))["code"] == 0
    messages = client.collect(0.7)
    assert not [m for m in messages if "id" in m]
    events = [m["data"]["E"] for m in by_topic(messages, f"{SYMBOL}@markPrice")]
    assert len(events) >= 2 and len(events) == len(set(events))
    assert len(server.ledger.counts) == 1


def test_the_201st_topic_gets_80403_and_may_leak_one_frame() -> None:
    symbols = tuple(f"C{i}-USDT" for i in range(201))
    many = Market(symbols=symbols, seed=1)
    options = WsOptions(leak_refused=True, feed=FeedOptions(rate=0.01))
    with WsServer(many, options=options) as ws_server:
        bingx = Client(ws_server.url)
        try:
            ids = [bingx.sub(f"{s}@markPrice") for s in symbols]
            replies = [bingx.reply(i) for i in ids]
            assert [r["code"] for r in replies] == [0] * 200 + [80403]
            assert replies[-1] == {
                "id": "201",
                "code": 80403,
                "msg": "your topic num over max 200",
                "dataType": "",
                "data": None,
            }
            leaked = bingx.recv()
            assert leaked["dataType"] == "C200-USDT@markPrice"
            record = ws_server.ledger.connections[0]
            assert len(record.topics) == 200 and record.refused == [("C200-USDT@markPrice", 80403)]
        finally:
            bingx.close()
