"""The simulator's WebSocket server at /swap-market: gzip binary frames, Ping/Pong, sub/unsub acks, topic
feeds and fault hooks (BINGX_API.md §17–24). An asyncio loop in one background thread."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

import orjson
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.protocol import State

from simulator import wire, ws_pump
from simulator import ws_topics as wt
from simulator.faults import WsFaults
from simulator.ledger import ConnectionRecord, Ledger, SentFrame
from simulator.ws_feed import Feed, feed_for
from simulator.ws_firehose import Firehose
from simulator.ws_session import Client, WsOptions

if TYPE_CHECKING:
    from simulator.market import Market

__all__ = ["Client", "WsOptions", "WsServer", "wall_ms"]

log = logging.getLogger(__name__)
T = TypeVar("T")
PATH = "/swap-market"


def wall_ms() -> int:
    """The market clock: real time in epoch milliseconds."""
    return int(time.time() * 1000)


class WsServer:
    """BingX's public swap WebSocket over a Market; `start()`/`stop()` or use as a context manager."""

    def __init__(
        self,
        market: Market,
        host: str = "127.0.0.1",
        port: int = 0,
        options: WsOptions | None = None,
        ledger: Ledger | None = None,
        clock: Callable[[], int] = wall_ms,
    ) -> None:
        self.market, self.host, self.port = market, host, port
        self.options = options or WsOptions()
        self.ledger = ledger or Ledger()
        self.clock = clock
        self.faults = WsFaults(self)
        self.clients: dict[int, Client] = {}
        self.subscribers: dict[str, set[Client]] = {}
        self.feeds: dict[str, Feed] = {}
        self.awaiting: dict[str, set[Client]] = {}  # incrDepth topic -> subscribers owed an `all` snapshot
        self.firehose = Firehose(self)
        self.account: Any = None  # simulator.ws_account.AccountStreams when the Simulator has an account
        self._next_id = 1
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}{PATH}"

    def __enter__(self) -> WsServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Bind, start the loop thread and return once connections are accepted."""
        ready: Future[int] = Future()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, args=(ready,), name="simulator-ws", daemon=True)
        self._thread.start()
        self.port = ready.result(timeout=10)

    def stop(self) -> None:
        """Close every connection (1001), stop the loop and join the thread."""
        if self._loop is None or self._thread is None:
            return
        if self._stopping is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=15)
        self._loop, self._thread = None, None

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run `function(*args)` on the loop thread and return its result (thread-safe entry point)."""
        if self._loop is None:
            raise RuntimeError("the WebSocket server is not running; call start() first")

        async def run() -> T:
            return function(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)

    def _run(self, ready: Future[int]) -> None:
        loop = self._loop  # local: stop() may give up joining and clear self._loop while we wind down
        assert loop is not None
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._main(ready))
        except BaseException as error:  # surfaced to start() instead of dying silently in a thread
            if not ready.done():
                ready.set_exception(error)
            else:
                log.exception("simulator WebSocket loop crashed")
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())  # the firehose's pool builder
            loop.close()

    async def _main(self, ready: Future[int]) -> None:
        self._stopping = asyncio.Event()
        async with serve(
            self._handle,
            self.host,
            self.port,
            process_request=self._admit,
            compression=None,  # BingX does not negotiate permessage-deflate (§17)
            ping_interval=None,  # no protocol-level pings: the heartbeat is the gzip "Ping" text
            close_timeout=1,
        ) as server:
            ready.set_result(_bound_port(server))
            pump = asyncio.create_task(ws_pump.pump(self))
            await self._stopping.wait()
            pump.cancel()
            for client in self.clients.values():
                client.close_reason = client.close_reason or "server stopped"
            self.firehose.cancel()

    def publish(
        self,
        topic: str,
        message: wt.Message,
        now_ms: int,
        only: Client | None = None,
        encoded: ws_pump.Encoded | None = None,
    ) -> None:
        """Encode once (unless done already) and write the same bytes to every subscriber (or to `only`)."""
        if topic in self.faults.muted:  # fault: this topic alone goes quiet
            return
        text, frame = wire.encode(message) if encoded is None else (encoded.text, encoded.frame)
        targets = [only] if only is not None else list(self.subscribers.get(topic, ()))
        update_id = message["data"].get("lastUpdateId") if topic.endswith("@incrDepth") else None
        if update_id is not None and only is None:  # no snapshot yet, or already contained in it
            targets = [client for client in targets if update_id > client.snapshot_ids.get(topic, update_id)]
        sent = tuple(client.id for client in targets if self.write(client, frame))
        if sent:
            leaked = only is not None and topic not in only.topics
            self.ledger.frame(SentFrame(topic, now_ms, text, message, sent, leaked))

    def write(self, client: Client, frame: bytes) -> bool:
        """Write one pre-built frame unless stalled or closing; cut off a client that stopped reading."""
        conn = client.conn
        if self.faults.stalled or conn.state is not State.OPEN:
            return False
        transport = conn.transport
        if transport.get_write_buffer_size() > self.options.max_buffer_bytes:
            self.abort(client, "slow consumer")
            return False
        transport.write(frame)
        return True

    def abort(self, client: Client, reason: str) -> None:
        """Drop the TCP connection without a close frame (what BingX does: the client sees 1006)."""
        client.close_reason = client.close_reason or reason
        client.conn.transport.abort()

    async def _handle(self, conn: ServerConnection) -> None:
        if self.account is not None:
            from simulator.ws_account import listen_key_of

            key = listen_key_of(conn)
            if key is not None:  # /swap-market?listenKey=...: the account stream (simulator/ws_account.py)
                await self.account.handle(conn, key)
                return
        client = Client(self._next_id, conn)
        self._next_id += 1
        self.clients[client.id] = client
        peer = ":".join(str(part) for part in conn.remote_address[:2])
        self.ledger.open(ConnectionRecord(client.id, peer, self.clock()))
        heartbeat = asyncio.create_task(self._heartbeat(client))
        try:
            async for message in conn:
                self._on_message(client, message)
        except ConnectionClosed:
            pass
        finally:
            heartbeat.cancel()
            for topic in list(client.topics):
                self._drop_subscription(client, topic)
            del self.clients[client.id]
            reason = client.close_reason or _close_reason(conn)
            self.ledger.update(client.id, closed_ms=self.clock(), close_reason=reason)

    async def _heartbeat(self, client: Client) -> None:
        interval, timeout = self.options.ping_interval_s, self.options.pong_timeout_s
        step = max(0.01, min(interval, timeout, 2.0) / 4)
        next_ping = time.monotonic() + interval
        while True:
            await asyncio.sleep(step)
            now = time.monotonic()
            if self.faults.ping_stopped or self.faults.stalled:
                client.last_pong, next_ping = now, now + interval  # no Ping sent, so no Pong owed
                continue
            if now >= next_ping:
                next_ping = max(next_ping + interval, now)
                if self.write(client, wire.PING_FRAME):
                    self.ledger.bump(client.id, "pings_sent")
            if now - client.last_pong > timeout:
                self.abort(client, "pong timeout")
                return

    def _on_message(self, client: Client, message: str | bytes) -> None:
        if message == "Pong":
            client.last_pong = time.monotonic()
            self.ledger.bump(client.id, "pongs_received")
            return
        try:
            request = orjson.loads(message)
        except orjson.JSONDecodeError:
            return  # unknown text: BingX ignores it and keeps the socket open (§17)
        if not isinstance(request, dict) or not isinstance(request.get("dataType"), str):
            return  # an array dataType gets no reply (§17)
        kind, name, request_id = request.get("reqType"), request["dataType"], request.get("id")
        if kind == "sub":
            self._subscribe(client, request_id, name)
        elif kind == "unsub":
            self._drop_subscription(client, name)
            self.ledger.update(client.id, topics=sorted(client.topics))
            self._ack(client, request_id)

    def _subscribe(self, client: Client, request_id: Any, name: str) -> None:
        topic = wt.parse_topic(name, self.market)
        if topic is None:
            self._refuse(client, request_id, name, 80015, "dataType not support")
        elif name in client.topics:
            self._ack(client, request_id)  # duplicate: code 0 again, still one stream
        elif len(client.topics) >= self.options.max_topics:
            self._refuse(
                client, request_id, name, 80403, f"your topic num over max {self.options.max_topics}"
            )
            if self.options.leak_refused:
                self._leak(client, topic)
        else:
            now = self.clock()
            client.topics.add(name)
            self.ledger.update(client.id, topics=sorted(client.topics))
            self._ack(client, request_id)
            self.subscribers.setdefault(name, set()).add(client)
            if name not in self.feeds:  # cheap: market work happens in the pump's worker
                self.feeds[name] = feed_for(topic, self.market, self.options.feed, now)
            if topic.channel == "incrDepth":  # its `all` snapshot comes from the pump's next round
                client.snapshot_ids.pop(name, None)
                self.awaiting.setdefault(name, set()).add(client)

    def _leak(self, client: Client, topic: wt.Topic) -> None:
        now = self.clock()
        feed = feed_for(topic, self.market, self.options.feed, now - 1_000)
        built = feed.build(now)
        leaked = built[0] if built else feed.snapshot(now)
        if leaked is not None:
            self.publish(topic.name, leaked, now, only=client)

    def _drop_subscription(self, client: Client, name: str) -> None:
        client.topics.discard(name)
        self.awaiting.get(name, set()).discard(client)
        subscribers = self.subscribers.get(name)
        if subscribers is not None:
            subscribers.discard(client)
            if not subscribers:  # a later subscriber starts a fresh stream (new trade window, new snapshot)
                del self.subscribers[name]
                self.feeds.pop(name, None)
                self.awaiting.pop(name, None)

    def _ack(self, client: Client, request_id: Any) -> None:
        shape = self.options.ack_shape
        long = shape == "long" or (shape == "alternate" and client.acks % 2 == 0)
        client.acks += 1
        self.write(client, wire.encode(wire.ack(request_id, long=long))[1])

    def _refuse(self, client: Client, request_id: Any, name: str, code: int, msg: str) -> None:
        self.ledger.refuse(client.id, name, code)
        self.write(client, wire.encode(wire.ack(request_id, code, msg, long=True))[1])

    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse every handshake during an outage (WsFaults.outage), then serve only the swap path."""
        if self.clock() < self.faults.refuse_until_ms:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "outage\n")
        return _only_swap_market(connection, request)

    def log_fault(self, what: str, detail: str) -> None:
        self.ledger.event(self.clock(), what, detail)


def _only_swap_market(connection: ServerConnection, request: Request) -> Response | None:
    if urlsplit(request.path).path != PATH:
        return connection.respond(HTTPStatus.NOT_FOUND, "Not Found\n")
    return None


def _bound_port(server: Server) -> int:
    return int(next(iter(server.sockets)).getsockname()[1])


def _close_reason(conn: ServerConnection) -> str:
    code = conn.close_code
    return f"closed by client ({code})" if code is not None and code != 1006 else "connection lost"
