"""The protocol of one BingX connection, over all its sockets, as events in and actions out: no I/O.

Events: a socket opened, bytes arrived, time passed, the socket ended, and the commands add, remove and
resubscribe a topic. Actions: journal records in the order they happened (every frame as received, stream
events), bytes to send (Pong, subscribe and unsubscribe requests, Close) and the end of the socket with its
reason. The session owns the subscriptions, ack matching, silence timers and every byte-level check
(through exchange/frames and recorder/wire); the receiver (recorder/receiver.py) does what the actions say,
and recorder/connection.py connects and reconnects. Time comes in with each event (only the subscription
pacers read the clock they are given). One thread owns a session: every event checks it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from exchange.errors import FrameError
from exchange.frames import PONG, classify, data_topic, is_ping, loads, parse_ack, unpack
from recorder.shared import Owner
from recorder.subscriptions import Subscriptions
from recorder.topics import Pacer
from recorder.wire import (
    OPCODE_BINARY,
    OPCODE_CLOSE,
    OPCODE_PING,
    OPCODE_PONG,
    OPCODE_TEXT,
    FrameParser,
    ProtocolError,
    client_frame,
)
from storage.journal import BINARY, CONTROL, DATA, DROPPED, EVENT

if TYPE_CHECKING:
    from recorder.connection import ConnectionOptions

log = logging.getLogger(__name__)

CHECK_EVERY_S = 0.5  # silence and late acks are looked at twice a second
PACE_EVERY_S = 0.02  # how soon a queued subscription is tried again when the pacer had no token
_PONG = PONG.encode()
_NORMAL_CLOSE = (1000).to_bytes(2, "big")


@dataclass
class Actions:
    """What the I/O loop must do, in this order: journal the records, send the bytes, end the socket."""

    records: list[tuple[int, bytes]] = field(default_factory=list)  # (journal kind, payload)
    send: list[bytes] = field(default_factory=list)  # whole client frames
    end: str | None = None  # close the socket: why


class Seen:
    """What arrived for one topic: frames, when the last came (the receiver's clock), and that frame."""

    __slots__ = ("at", "frames", "text")

    def __init__(self) -> None:
        self.frames = 0
        self.at = 0.0
        self.text = b""  # the metrics sample its exchange time once a second, not every frame


@dataclass(frozen=True)
class Snapshot:
    """A session's figures at one instant, copied on its owner's thread for any other to read."""

    connected: bool
    topics: frozenset[str]
    acked: frozenset[str]
    refused: dict[str, int]
    frames: int
    received_bytes: int
    reconnects: int
    silences: int
    refusals: int
    seen: dict[str, tuple[int, float, bytes]]  # topic -> (frames, at, last frame)


def event_payload(
    event: str, topic: str | None = None, code: int | None = None, detail: str | None = None
) -> bytes:
    """A synthetic journal record for stream_events: it shares the journal's durability and ordering."""
    return orjson.dumps({"event": event, "topic": topic, "code": code, "detail": detail})


class Session:
    """One connection's protocol state; every method is an event and returns the Actions it causes."""

    def __init__(
        self,
        name: str,
        topics: Iterable[str],
        options: ConnectionOptions,
        shared_pacer: Pacer | None = None,
        mask: Callable[[], bytes] = lambda: os.urandom(4),
        clock: Callable[[], float] = time.monotonic,  # the pacers' only; events carry `now` themselves
    ) -> None:
        self.name = name
        self.options = options
        self.owner = Owner(f"session {name}")
        self.subscriptions = Subscriptions(
            name, topics, options.subscribes_per_second, options.ack_timeout_s, shared_pacer, clock
        )
        self.mask = mask
        self.connected = False
        self.frames = 0
        self.bytes = 0  # every frame's payload as received (gzip), Pings included
        self.reconnects = 0
        self.silences = 0
        self.refusals = 0
        self.seen: dict[str, Seen] = {}  # topic -> its data frames (acked or not)
        self.next_tick = float("inf")  # when `tick` has something to do
        self._parser = FrameParser()
        self._out = Actions()
        self._now = self._last_frame = self._last_ping = self._next_check = 0.0
        self._logged_drops: set[str] = set()
        self._logged_refusals: set[str] = set()

    # --- events -------------------------------------------------------------------------------------

    def opened(self, now: float, attempt: int, url: str) -> Actions:
        """A socket is up (its handshake done): journal it and queue every wanted topic."""
        self.owner.check()
        self.connected = True
        self.reconnects = attempt
        self._parser = FrameParser()
        self._last_frame = self._last_ping = now
        self._next_check = now + CHECK_EVERY_S
        self.subscriptions.restart()
        self._event("reconnect" if attempt else "connect", detail=url)
        return self.tick(now)

    def receive(self, data: bytes, now: float) -> Actions:
        """Bytes from the socket: journal and answer every whole frame they complete."""
        self.owner.check()
        self._now = now
        broken = None
        try:
            messages = self._parser.feed(data)
        except ProtocolError as error:  # the stream cannot be parsed past this; what came before lands
            messages, broken = error.messages, error
        if messages:
            self._last_frame = now
        for opcode, payload in messages:
            if opcode <= OPCODE_BINARY:  # text or binary: the parser returns only these, Ping and Close
                self._frame(opcode, payload)
            elif opcode == OPCODE_PING:
                self._send(OPCODE_PONG, payload)
            else:  # OPCODE_CLOSE: answer it and stop, as RFC 6455 asks
                self._send(OPCODE_CLOSE, payload[:2])
                return self._ended(f"closed by the server {payload[:2].hex()}")
        if broken is not None:
            return self._ended(f"{type(broken).__name__}: {broken}")
        return self._take()

    def tick(self, now: float) -> Actions:
        """Time passed: send the subscriptions the pacers allow; a silent socket or a late ack is acted on."""
        self.owner.check()
        self._now = now
        if not self.connected:  # nothing to do until a socket opens
            self.next_tick = float("inf")
            return self._take()
        more = self._send_due()
        if now >= self._next_check:
            self._next_check = now + CHECK_EVERY_S
            tolerance = self.options.silence_timeout_s
            for since, what in ((self._last_frame, "silent"), (self._last_ping, "no Ping")):
                if now - since > tolerance:
                    reason = f"{what} for more than {tolerance:.1f}s"
                    self.silences += 1
                    self._event("silence", detail=reason)
                    return self._ended(reason)
            if self.subscriptions.in_flight:
                for request_id in self.subscriptions.overdue(now):
                    timeout = self.options.ack_timeout_s
                    self._event("resync", detail=f"no ack for {request_id} within {timeout}s; sent again")
                more = self._send_due() or more
        self.next_tick = now + PACE_EVERY_S if more else self._next_check
        return self._take()

    def close(self) -> Actions:
        """We are stopping: say goodbye to the server and end the socket."""
        self.owner.check()
        if not self.connected:
            return self._take()
        self._send(OPCODE_CLOSE, _NORMAL_CLOSE)
        return self._ended("shutdown")

    def closed(self, reason: str) -> Actions:
        """The socket is gone (for `reason`): nothing is acked any more, data on a new one needs new acks."""
        self.owner.check()
        if self.connected:
            self.connected = False
            self.subscriptions.acked.clear()
            self.next_tick = float("inf")
            self._event("disconnect", detail=reason)
        return self._take()

    # --- commands -----------------------------------------------------------------------------------

    def add(self, topic: str) -> None:
        """Subscribe one more topic (sent at the paced rate)."""
        self.owner.check()
        self.subscriptions.add(topic)
        self.next_tick = 0.0

    def remove(self, topic: str) -> None:
        """Unsubscribe a topic (a delisted contract)."""
        self.owner.check()
        self.subscriptions.remove(topic)
        self.next_tick = 0.0

    def resubscribe(self, topic: str) -> bool:
        """Unsubscribe and subscribe a topic again; False if this session lacks it."""
        self.owner.check()
        self.next_tick = 0.0
        return self.subscriptions.resubscribe(topic)

    def snapshot(self) -> Snapshot:
        self.owner.check()
        subscriptions = self.subscriptions
        return Snapshot(
            connected=self.connected,
            topics=frozenset(subscriptions.topics),
            acked=frozenset(subscriptions.acked),
            refused=dict(subscriptions.refused),
            frames=self.frames,
            received_bytes=self.bytes,
            reconnects=self.reconnects,
            silences=self.silences,
            refusals=self.refusals,
            seen={topic: (seen.frames, seen.at, seen.text) for topic, seen in self.seen.items()},
        )

    # --- frames -------------------------------------------------------------------------------------

    def _frame(self, opcode: int, payload: bytes) -> None:
        # Bytes all the way to the journal: decoding to str and encoding back cost ~0.5 µs a frame.
        self.frames += 1
        self.bytes += len(payload)
        try:
            raw = unpack(payload, binary=opcode == OPCODE_BINARY)
        except FrameError:  # quarantined by the converter, never fatal here
            self._out.records.append((BINARY, payload))
            return
        if is_ping(raw):
            self._last_ping = self._now
            self._send(OPCODE_TEXT, _PONG)  # Pings are not journaled: their absence is a silence event
            return
        topic = data_topic(raw)
        if topic is not None:
            self._data(topic, raw)
        else:
            self._control(raw)

    def _data(self, topic: str, text: bytes) -> None:
        seen = self.seen.get(topic)
        if seen is None:
            seen = self.seen[topic] = Seen()
        seen.frames += 1
        seen.at = self._now
        seen.text = text
        if topic in self.subscriptions.acked:
            self._out.records.append((DATA, text))
            return
        self._out.records.append((DROPPED, text))
        if topic not in self._logged_drops:
            self._logged_drops.add(topic)
            level = logging.WARNING if len(self._logged_drops) == 1 else logging.DEBUG
            log.log(level, "connection %s: dropping data for %s, not acked with code 0", self.name, topic)

    def _control(self, text: bytes) -> None:
        try:
            obj = loads(text)
        except FrameError:
            self._out.records.append((CONTROL, text))  # the converter quarantines it
            return
        kind = classify(obj)
        if kind == "data":  # a data frame in a layout the byte scan did not spot
            self._data(str(obj["dataType"]), text)
            return
        self._out.records.append((CONTROL, text))
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
            self._event("refused", topic=answer.topic, code=ack.code, detail=ack.msg)
        else:
            self._event("subscribed", topic=answer.topic, code=0)

    # --- actions ------------------------------------------------------------------------------------

    def _event(
        self, event: str, topic: str | None = None, code: int | None = None, detail: str | None = None
    ) -> None:
        self._out.records.append((EVENT, event_payload(event, topic, code, detail)))

    def _send(self, opcode: int, payload: bytes) -> None:
        self._out.send.append(client_frame(opcode, payload, self.mask()))

    def _send_due(self) -> bool:
        """Send every queued (un)subscription the pacers allow now; say whether more are waiting."""
        while True:
            request, more = self.subscriptions.next_request()
            if request is None:
                return more
            self._send(OPCODE_TEXT, request.encode())

    def _ended(self, reason: str) -> Actions:
        self._out.end = reason
        return self._take()

    def _take(self) -> Actions:
        out, self._out = self._out, Actions()
        return out
