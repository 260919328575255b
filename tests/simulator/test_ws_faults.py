"""The simulator's heartbeat, fault knobs, admin endpoint, firehose and ledger, seen by a plain client."""

from __future__ import annotations

import itertools
import json
import threading
import time
import zlib
from collections.abc import Iterator

import pytest
import requests
import websocket

from simulator import Simulator
from simulator.market import Market
from simulator.ws import WsOptions, WsServer
from simulator.ws_feed import FeedOptions
from tests.recorder.conftest import wait_for
from tests.simulator.test_ws import SYMBOL, Client, by_topic


@pytest.fixture(scope="module")
def market() -> Market:
    warm = Market(symbols=(SYMBOL, "ETH-USDT"), seed=3)
    warm.trades(SYMBOL, int(time.time() * 1000) - 1000, int(time.time() * 1000))
    return warm


def server_for(market: Market, **feed: float) -> WsServer:
    options = WsOptions(ping_interval_s=0.2, pong_timeout_s=1.0, feed=FeedOptions(seed=3, **feed))  # type: ignore[arg-type]
    return WsServer(market, options=options)


@pytest.fixture
def server(market: Market) -> Iterator[WsServer]:
    with server_for(market, rate=5.0) as ws_server:
        yield ws_server


def next_raw(client: Client) -> bytes:
    """The next frame that is not a Ping, undecoded."""
    while True:
        frame = client.ws.recv()
        assert isinstance(frame, bytes), "every server frame must be binary"
        try:
            if zlib.decompress(frame, 31) == b"Ping":
                continue
        except zlib.error:
            pass
        return frame


def test_ping_comes_every_interval_and_a_ponging_client_stays(server: WsServer) -> None:
    client = Client(server.url)
    try:
        started = time.monotonic()
        client.collect(1.6)
        assert client.ws.connected and 5 <= client.pings <= 9  # 0.2 s cadence over 1.6 s
        assert time.monotonic() - started >= 1.6 > server.options.pong_timeout_s
        record = server.ledger.connections[0]
        deadline = time.monotonic() + 5.0  # the last Pong may still be on its way to the server
        while record.pongs_received < record.pings_sent and time.monotonic() < deadline:
            time.sleep(0.01)
        # Every Ping the server recorded got its Pong; the client may have seen one more than the ledger
        # holds (sent, not yet recorded, when the client stopped reading).
        assert record.closed_ms is None and record.pongs_received == record.pings_sent
        assert client.pings - 1 <= record.pongs_received <= client.pings
    finally:
        client.close()


def test_a_client_that_never_pongs_is_dropped_without_a_close_frame(server: WsServer) -> None:
    client = Client(server.url, pong=False)
    started = time.monotonic()
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        client.collect(5.0)
    assert 1.0 <= time.monotonic() - started < 4.0
    assert client.pings >= 4
    client.close()
    wait_for(lambda: server.ledger.connections[0].close_reason is not None)
    assert server.ledger.connections[0].close_reason == "pong timeout"


def test_drop_aborts_every_connection(server: WsServer) -> None:
    clients = [Client(server.url), Client(server.url)]
    clients[0].reply(clients[0].sub(f"{SYMBOL}@markPrice"))
    assert server.faults.drop() == 2
    for client in clients:
        with pytest.raises(websocket.WebSocketConnectionClosedException):
            client.collect(2.0)
        client.close()
    wait_for(lambda: all(r.close_reason is not None for r in server.ledger.connections))
    assert [r.close_reason for r in server.ledger.connections] == ["fault: drop", "fault: drop"]


def test_stop_ping_stops_the_heartbeat_but_not_data_nor_the_connection(server: WsServer) -> None:
    client = Client(server.url, pong=False)
    try:
        client.reply(client.sub(f"{SYMBOL}@markPrice"))
        server.faults.stop_ping()
        client.collect(0.1)
        client.pings = 0
        data = client.collect(1.5)  # longer than pong_timeout_s: nothing owed without a Ping
        assert client.pings == 0 and len(by_topic(data, f"{SYMBOL}@markPrice")) >= 4 and client.ws.connected
        server.faults.stop_ping(False)
        client.pong = True
        client.collect(0.5)
        assert client.pings >= 1
    finally:
        client.close()


def test_stall_keeps_the_socket_open_and_silent_until_cleared(server: WsServer) -> None:
    client = Client(server.url)
    try:
        client.reply(client.sub(f"{SYMBOL}@depth5"))
        server.faults.stall()

        def drained() -> (
            bool
        ):  # what was in flight: every frame the ledger counts, Pings and the ack are read
            client.collect(0.05)
            [record] = server.ledger.connections
            return len(client.raw) == record.frames_sent + record.pings_sent + 1

        wait_for(drained)
        client.pings = 0
        silent = client.collect(1.5)
        assert silent == [] and client.pings == 0 and client.ws.connected
        server.faults.clear()
        assert len(by_topic(client.collect(0.6), f"{SYMBOL}@depth5")) >= 2
    finally:
        client.close()


def test_each_garbage_kind_arrives_as_its_own_defect(server: WsServer) -> None:
    client = Client(server.url)
    try:
        client.collect(0.05)
        frames = {}
        for kind in ("bad-gzip", "bad_json", "unknown_datatype", "missing_fields"):
            assert server.faults.garbage(kind) == 1
            frames[kind] = next_raw(client)
        with pytest.raises(zlib.error):
            zlib.decompress(frames["bad-gzip"], 31)
        with pytest.raises(json.JSONDecodeError):
            json.loads(zlib.decompress(frames["bad_json"], 31))
        assert json.loads(zlib.decompress(frames["unknown_datatype"], 31))["dataType"] == f"{SYMBOL}@nope"
        trade = json.loads(zlib.decompress(frames["missing_fields"], 31))
        assert trade["dataType"] == f"{SYMBOL}@trade" and trade["data"]
        assert all("p" not in item and "q" in item for item in trade["data"])
        kinds = [g.kind for g in server.ledger.garbage_frames]
        assert kinds == ["bad_gzip", "bad_json", "unknown_datatype", "missing_fields"]
        with pytest.raises(ValueError, match="unknown garbage kind"):
            server.faults.garbage("nonsense")
    finally:
        client.close()


def incr_ids(client: Client, seconds: float) -> list[int]:
    return [m["data"]["lastUpdateId"] for m in by_topic(client.collect(seconds), f"{SYMBOL}@incrDepth")]


def test_incr_skip_withholds_updates_and_incr_repeat_resends_one(market: Market) -> None:
    with server_for(market, rate=5.0, incr_id_skip_max=1) as ws_server:
        client = Client(ws_server.url)
        try:
            client.reply(client.sub(f"{SYMBOL}@incrDepth"))
            before = incr_ids(client, 0.3)
            assert all(b - a == 1 for a, b in itertools.pairwise(before))
            ws_server.faults.incr_skip(3)
            ws_server.faults.incr_repeat(1)
            after = before[-1:] + incr_ids(client, 0.8)
            steps = [b - a for a, b in itertools.pairwise(after)]
            assert sorted(steps)[0] == 0 and steps.count(0) == 1  # the repeated update
            assert max(steps) == 4 and steps.count(4) == 1  # three ids withheld, never sent
        finally:
            client.close()
        assert [e[1] for e in ws_server.ledger.events] == ["incr_withhold", "incr_repeat"]


def test_firehose_pushes_exactly_the_requested_frames(market: Market) -> None:
    with server_for(market, rate=0.01) as ws_server:
        client = Client(ws_server.url)
        try:
            for topic in (f"{SYMBOL}@depth5", f"{SYMBOL}@markPrice"):
                client.reply(client.sub(topic))
            result: list[int] = []
            pusher = threading.Thread(
                target=lambda: result.append(ws_server.firehose.run(3000, pool_size=50))
            )
            pusher.start()
            got = [client.recv() for _ in range(3000)]
            pusher.join()
            assert result == [3000] and all(m["dataType"].startswith(SYMBOL) for m in got)
            assert sum(ws_server.ledger.counts.values()) == 3000
        finally:
            client.close()


def test_the_ledger_holds_the_exact_text_of_every_data_frame(server: WsServer) -> None:
    client = Client(server.url)
    client.reply(client.sub(f"{SYMBOL}@bookTicker"))
    client.collect(0.6)
    client.reply(client.sub(f"{SYMBOL}@bookTicker", "unsub"))
    client.close()
    texts = [zlib.decompress(f, 31).decode() for f in client.raw]
    received = [t for t in texts if "@bookTicker" in t]
    sent = server.ledger.frames(f"{SYMBOL}@bookTicker")
    assert len(sent) >= 2 and received == [frame.text for frame in sent]
    assert all(frame.payload == json.loads(frame.text) and frame.connections == (1,) for frame in sent)


def test_other_paths_get_404(server: WsServer) -> None:
    with pytest.raises(websocket.WebSocketBadStatusException) as error:
        websocket.create_connection(server.url.replace("/swap-market", "/market"), timeout=5)
    assert error.value.status_code == 404


def test_admin_endpoint_breaks_the_running_simulator() -> None:
    with Simulator(symbols=[SYMBOL], admin_port=0, ping_interval_s=0.2) as sim:
        assert sim.admin_url is not None
        client = Client(sim.ws_url)
        try:
            client.collect(0.05)
            garbage = requests.post(f"{sim.admin_url}/faults/garbage?kind=bad-gzip", timeout=5)
            assert garbage.json() == {"sent_to": 1}
            with pytest.raises(zlib.error):
                zlib.decompress(next_raw(client), 31)
            assert requests.post(f"{sim.admin_url}/faults/nope", timeout=5).status_code == 400
            assert requests.post(f"{sim.admin_url}/faults/drop", timeout=5).json() == {"dropped": 1}
            with pytest.raises(websocket.WebSocketConnectionClosedException):
                client.collect(2.0)
        finally:
            client.close()
        wait_for(lambda: all(c.close_reason is not None for c in sim.ledger.connections))
        ledger = requests.get(f"{sim.admin_url}/ledger", timeout=5).json()
        assert [c["close_reason"] for c in ledger["connections"]] == ["fault: drop"]
        assert [g["kind"] for g in ledger["garbage"]] == ["bad_gzip"]


def test_outage_drops_every_connection_and_refuses_new_ones_until_it_ends(server: WsServer) -> None:
    client = Client(server.url)
    assert server.faults.outage(0.5) == 1
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        client.collect(2.0)
    client.close()
    with pytest.raises(websocket.WebSocketBadStatusException):
        Client(server.url)
    deadline = time.monotonic() + 5
    while server.clock() < server.faults.refuse_until_ms and time.monotonic() < deadline:
        time.sleep(0.05)
    Client(server.url).close()  # accepted again
