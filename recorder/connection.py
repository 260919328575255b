"""One WebSocket connection: a recv loop in its own thread that journals every frame before anything else.

It answers Ping, tracks acks, paces subscriptions, treats silence as death and reconnects forever.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import websocket

from exchange.backoff import backoff
from exchange.errors import FrameError
from exchange.frames import (
    PING,
    PONG,
    classify,
    gunzip,
    loads,
    parse_ack,
)
from recorder.receiver import Receiver
from recorder.subscriptions import Subscriptions
from recorder.topics import Pacer
from recorder.wire import OPCODE_CLOSE, OPCODE_TEXT, FrameReader
from storage.journal import BINARY, CONTROL, DATA, DROPPED, EVENT, JournalWriter

log = logging.getLogger(__name__)

_DATA_TYPE = b'"dataType":"'
_PING = PING.encode()
RECV_TIMEOUT_S = 0.05


@dataclass(frozen=True)
class ConnectionOptions:
    url: str
    silence_timeout_s: float = 15.0  # BingX pings every ~5 s: three missed Pings mean the socket is dead
    subscribes_per_second: float = 8.0  # BingX: "keep subscribe rate < 10/s"
    connect_timeout_s: float = 10.0
    ack_timeout_s: float = 10.0  # a subscription not answered by then is sent again (its ack was lost)
    backoff_first_s: float = 1.0
    backoff_cap_s: float = 30.0


class Seen:
    """What arrived for one topic on a connection: counted on the receive thread, read by the metrics."""

    __slots__ = ("at", "frames", "text")

    def __init__(self) -> None:
        self.frames = 0
        self.at = 0.0  # the connection's clock (monotonic) when its last frame arrived
        self.text = b""  # that frame: the metrics sample its exchange time once a second, not every frame


class Silence(Exception):
    """Nothing arrived for longer than the connection's tolerance."""


def event_payload(
    event: str, topic: str | None = None, code: int | None = None, detail: str | None = None
) -> bytes:
    """A synthetic journal record for stream_events: it shares the journal's durability and ordering."""
    return orjson.dumps({"event": event, "topic": topic, "code": code, "detail": detail})


class Connection:
    """Keeps one socket subscribed to its topics, forever, until stop()."""

    def __init__(
        self,
        name: str,
        topics: Iterable[str],
        journal: JournalWriter,
        options: ConnectionOptions,
        shared_pacer: Pacer | None = None,
        clock: Callable[[], float] = time.monotonic,
        receiver: Receiver | None = None,  # shared by a recorder's connections; None: one of its own
    ) -> None:
        self.name = name
        self.journal = journal
        self.options = options
        self.clock = clock
        self.subscriptions = Subscriptions(
            name, topics, options.subscribes_per_second, options.ack_timeout_s, shared_pacer, clock
        )
        self.frames = 0
        self.reconnects = 0
        self.bytes = 0  # every frame's payload as received (gzip), Pings included
        self.silences = 0
        self.refusals = 0
        self.seen: dict[str, Seen] = {}  # topic -> its data frames (acked or not)
        self._seq = 0
        self._stop = threading.Event()
        self._logged_drops: set[str] = set()
        self._logged_refusals: set[str] = set()
        self._next_check = self._last_frame = self._last_ping = 0.0
        self._ws: websocket.WebSocket | None = None
        self._reader: FrameReader | None = None
        self._receiver = receiver
        self._ended = threading.Event()  # the receiver saw the session end; _failure says why
        self._failure: BaseException | None = None
        self._append_lock = threading.Lock()  # seq order: frames (receiver thread) and events (this one)
        self._thread = threading.Thread(target=self._run, name=f"ws-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the loop to stop; it closes the socket and journals a final disconnect."""
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def connected(self) -> bool:
        return self._ws is not None

    @property
    def topics(self) -> set[str]:
        return self.subscriptions.topics

    @property
    def acked(self) -> set[str]:
        return self.subscriptions.acked

    @property
    def refused(self) -> dict[str, int]:
        return self.subscriptions.refused

    def add(self, topic: str) -> None:
        """Subscribe one more topic (thread-safe; sent at the paced rate)."""
        self.subscriptions.add(topic)

    def resubscribe(self, topic: str) -> bool:
        """Unsubscribe and subscribe a topic again (thread-safe); False if this connection lacks it."""
        return self.subscriptions.resubscribe(topic)

    def remove(self, topic: str) -> None:
        """Unsubscribe a topic (a delisted contract)."""
        self.subscriptions.remove(topic)

    def event(
        self, event: str, topic: str | None = None, code: int | None = None, detail: str | None = None
    ) -> None:
        self._append(EVENT, event_payload(event, topic, code, detail))

    def _append(self, kind: int, payload: bytes) -> None:
        with self._append_lock:
            self.journal.append(time.time_ns() // 1000, self.name, self._seq, kind, payload)
            self._seq += 1

    def _run(self) -> None:
        own = self._receiver is None
        receiver = self._receiver = self._receiver or Receiver(f"receiver-{self.name}")
        try:
            self._reconnect_forever()
        finally:
            if own:
                receiver.stop()

    def _reconnect_forever(self) -> None:
        delays = backoff(self.options.backoff_first_s, 2.0, self.options.backoff_cap_s)
        attempt = 0
        while not self._stop.is_set():
            started = self.clock()
            reason = self._session(attempt)
            if self.clock() - started > self.options.silence_timeout_s:
                delays = backoff(
                    self.options.backoff_first_s, 2.0, self.options.backoff_cap_s
                )  # it was healthy
            if self._stop.is_set():
                break
            wait = next(delays)
            log.warning("connection %s: %s; reconnecting in %.1fs", self.name, reason, wait)
            attempt += 1
            self.reconnects += 1
            self._stop.wait(wait)

    def _session(self, attempt: int) -> str:
        """Connect, subscribe and receive until the socket fails or stop(); return why it ended."""
        ws = websocket.WebSocket(skip_utf8_validation=True)
        try:
            ws.connect(self.options.url, timeout=self.options.connect_timeout_s)  # type: ignore[no-untyped-call]
        except (OSError, websocket.WebSocketException) as error:
            self.event("disconnect", detail=f"connect failed: {error}")
            ws.shutdown()  # type: ignore[no-untyped-call]
            return f"connect failed: {error}"
        self._ws = ws
        self.event("reconnect" if attempt else "connect", detail=self.options.url)
        self.subscriptions.restart()
        try:
            self._receive(ws)
            reason = "shutdown"
            _close_politely(ws)
        except Silence as error:
            reason = str(error)
            self.silences += 1
            self.event("silence", detail=reason)
        except (OSError, websocket.WebSocketException, ConnectionError) as error:
            reason = f"{type(error).__name__}: {error}"
        finally:
            self._ws = None
            self.acked.clear()  # data arriving on a new socket needs a new ack
            ws.shutdown()  # type: ignore[no-untyped-call]
        self.event("disconnect", detail=reason)
        return reason

    def _receive(self, ws: websocket.WebSocket) -> None:
        """Have the receiver read the socket; meanwhile send paced subscriptions and watch for silence."""
        assert self._receiver is not None and ws.sock is not None
        sock = ws.sock
        self._last_frame = self._last_ping = self.clock()
        # The receiver recvs only readable sockets, but an SSL read can still wait for the rest of a TLS
        # record; this bounds how long one socket can hold up the others (and a blocked send).
        ws.settimeout(RECV_TIMEOUT_S)
        self._reader = FrameReader(ws)
        self._failure = None
        self._ended.clear()
        self._receiver.add(sock, self)
        try:
            while not self._stop.is_set():
                more = self._send_due(ws)
                now = self.clock()
                if now >= self._next_check:
                    self._check(now)
                if self._ended.wait(0.02 if more else min(0.5, self.options.silence_timeout_s / 4)):
                    break
        finally:
            self._receiver.discard(sock)
            self._reader = None
        failure = self._failure
        if failure is None:
            return
        if not isinstance(failure, OSError | websocket.WebSocketException | ConnectionError):
            log.error("connection %s: receiving failed", self.name, exc_info=failure)  # a bug: reconnect
            raise ConnectionError(f"receiving failed: {type(failure).__name__}: {failure}") from failure
        raise failure

    def pump(self) -> None:
        """The socket is readable (receiver thread): journal and handle every whole frame it completed."""
        ws, reader = self._ws, self._reader
        if ws is None or reader is None:
            raise ConnectionError("the session is over")
        messages = reader.pump()
        if not messages:
            return
        self._last_frame = self.clock()
        for opcode, payload in messages:
            if opcode == OPCODE_CLOSE:
                raise ConnectionError(f"closed by the server {payload[:2].hex() if payload else ''}")
            self._frame(ws, opcode, payload)

    def failed(self, error: BaseException) -> None:
        """The receiver saw this session end (receiver thread)."""
        self._failure = error
        self._ended.set()

    def _check(self, now: float) -> None:
        """Twice a second: a socket with no frame, or no Ping, for longer than the tolerance is dead."""
        self._next_check = now + 0.5
        tolerance = self.options.silence_timeout_s
        if now - self._last_frame > tolerance:
            raise Silence(f"silent for more than {tolerance:.1f}s")
        if now - self._last_ping > tolerance:
            raise Silence(f"no Ping for more than {tolerance:.1f}s")
        if self.subscriptions.in_flight:
            for request_id in self.subscriptions.overdue(now):
                timeout = self.options.ack_timeout_s
                self.event("resync", detail=f"no ack for {request_id} within {timeout}s; sent again")

    def _frame(self, ws: websocket.WebSocket, opcode: int, payload: bytes) -> None:
        # Bytes all the way to the journal: decoding to str and encoding back cost ~0.5 µs a frame.
        self.frames += 1
        self.bytes += len(payload)
        try:
            raw = payload if opcode == OPCODE_TEXT else gunzip(payload)
            if not raw.isascii():  # market data is ASCII; anything else must at least be UTF-8
                raw.decode()
        except (FrameError, UnicodeDecodeError):  # quarantined by the converter, never fatal here
            self._append(BINARY, payload)
            return
        if raw == _PING:
            self._last_ping = self.clock()
            ws.send(PONG)  # Pings are not journaled: their absence is recorded as a silence event
            return
        start = raw.find(_DATA_TYPE)
        if start >= 0 and raw[start + 12 : start + 13] != b'"':
            topic = raw[start + 12 : raw.find(b'"', start + 12)].decode()
            self._data(topic, raw)
            return
        self._control(raw)

    def _data(self, topic: str, text: bytes) -> None:
        seen = self.seen.get(topic)
        if seen is None:
            seen = self.seen[topic] = Seen()
        seen.frames += 1
        seen.at = self._last_frame
        seen.text = text
        if topic in self.acked:
            self._append(DATA, text)
            return
        self._append(DROPPED, text)
        if topic not in self._logged_drops:
            self._logged_drops.add(topic)
            level = logging.WARNING if len(self._logged_drops) == 1 else logging.DEBUG
            log.log(level, "connection %s: dropping data for %s, not acked with code 0", self.name, topic)

    def _control(self, text: bytes) -> None:
        try:
            obj = loads(text)
        except FrameError:
            self._append(CONTROL, text)  # the converter quarantines it
            return
        kind = classify(obj)
        if kind == "data":  # a data frame in a layout the fast path did not spot
            self._data(str(obj["dataType"]), text)
            return
        self._append(CONTROL, text)
        if kind == "ack":
            self._ack(obj)

    def _ack(self, obj: dict[str, Any]) -> None:
        try:
            ack = parse_ack(obj)
        except FrameError:
            return
        answer = self.subscriptions.answer(ack)
        if answer is None or answer.event == "unsubscribed":
            return
        if answer.event == "refused":
            if answer.topic not in self._logged_refusals:  # logged once; every refusal is an event row
                self._logged_refusals.add(answer.topic)
                log.warning("connection %s: %s refused: %d %s", self.name, answer.topic, ack.code, ack.msg)
            self.refusals += 1
            self.event("refused", topic=answer.topic, code=ack.code, detail=ack.msg)
        else:
            self.event("subscribed", topic=answer.topic, code=0)

    def _send_due(self, ws: websocket.WebSocket) -> bool:
        """Send the next queued (un)subscription if the pacers allow; say whether more are waiting."""
        request, more = self.subscriptions.next_request()
        if request is not None:
            ws.send(request)
        return more


def _close_politely(ws: websocket.WebSocket) -> None:
    """Send a close frame and wait briefly for the server's; a stopping recorder must not hang here."""
    with contextlib.suppress(OSError, websocket.WebSocketException):
        ws.close(timeout=0.2)
