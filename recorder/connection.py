"""One BingX connection, kept up forever: a small supervisor that connects, hands the socket over, backs off.

The protocol is the connection's Session (recorder/session.py), owned by the receiver's thread
(recorder/receiver.py), which reads the socket, journals every frame before anything else and answers it.
This thread only does the WebSocket handshake, gives the socket to the receiver, waits to hear that it
ended, and reconnects with backoff. Other threads reach the session through the receiver (`add`,
`resubscribe`, `snapshot`, …), never directly.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TypeVar

import websocket

from exchange.backoff import backoff
from recorder.receiver import Receiver
from recorder.session import Session, Snapshot, event_payload
from recorder.shared import Numbered
from recorder.topics import Pacer
from storage.journal import EVENT, JournalWriter

log = logging.getLogger(__name__)

_STOP = "stop"
T = TypeVar("T")


@dataclass(frozen=True)
class ConnectionOptions:
    url: str
    silence_timeout_s: float = 15.0  # BingX pings every ~5 s: three missed Pings mean the socket is dead
    subscribes_per_second: float = 8.0  # BingX: "keep subscribe rate < 10/s"
    connect_timeout_s: float = 10.0
    ack_timeout_s: float = 10.0  # a subscription not answered by then is sent again (its ack was lost)
    backoff_first_s: float = 1.0
    backoff_cap_s: float = 30.0


class NoSocket(Exception):
    """The connection cannot even try a socket this time (its reason is journaled already)."""


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
        self.options = options
        self.clock = clock
        self.journal = Numbered(journal, name)
        self.session = self._new_session(topics, shared_pacer)
        self._receiver = receiver
        self._own_receiver = receiver is None
        self._ends: queue.Queue[str] = queue.Queue()  # the receiver says why each socket ended; stop() too
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"ws-{name}", daemon=True)

    def _new_session(self, topics: Iterable[str], shared_pacer: Pacer | None) -> Session:
        return Session(self.name, topics, self.options, shared_pacer, clock=self.clock)

    def start(self) -> None:
        if self._receiver is None:
            self._receiver = Receiver(f"receiver-{self.name}", clock=self.clock)
        self._receiver.attach(self.session, self.journal, self._ends.put)
        self._thread.start()

    def stop(self) -> None:
        """Ask the loop to stop; it closes the socket and journals a final disconnect."""
        self._stop.set()
        self._ends.put(_STOP)

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    # --- the session, through the receiver (any thread) ----------------------------------------------

    def snapshot(self) -> Snapshot:
        """The session's figures now (for metrics and tests)."""
        return self._on_receiver(self.session.snapshot)

    @property
    def connected(self) -> bool:
        return self.snapshot().connected

    @property
    def topics(self) -> frozenset[str]:
        return self.snapshot().topics

    @property
    def acked(self) -> frozenset[str]:
        return self.snapshot().acked

    @property
    def refused(self) -> dict[str, int]:
        return self.snapshot().refused

    @property
    def reconnects(self) -> int:
        return self.snapshot().reconnects

    @property
    def frames(self) -> int:
        return self.snapshot().frames

    @property
    def seen(self) -> dict[str, tuple[int, float, bytes]]:
        return self.snapshot().seen

    def add(self, topic: str) -> None:
        """Subscribe one more topic (sent at the paced rate)."""
        self._on_receiver(lambda: self.session.add(topic))

    def resubscribe(self, topic: str) -> bool:
        """Unsubscribe and subscribe a topic again; False if this connection lacks it."""
        return self._on_receiver(lambda: self.session.resubscribe(topic))

    def remove(self, topic: str) -> None:
        """Unsubscribe a topic (a delisted contract)."""
        self._on_receiver(lambda: self.session.remove(topic))

    def cut(self, reason: str) -> None:
        """End the current socket now (from any thread); the loop reconnects."""
        if self._receiver is not None:
            self._receiver.cut(self.session, reason)

    def event(
        self, event: str, topic: str | None = None, code: int | None = None, detail: str | None = None
    ) -> None:
        """Journal a stream_events row from any thread, in this connection's order."""
        self.journal.append(EVENT, event_payload(event, topic, code, detail))

    def _on_receiver(self, function: Callable[[], T]) -> T:
        receiver = self._receiver
        return function() if receiver is None else receiver.call(function)  # None: not started, still ours

    # --- the supervisor thread -----------------------------------------------------------------------

    def _run(self) -> None:
        receiver = self._receiver
        assert receiver is not None
        try:
            self._reconnect_forever(receiver)
        finally:
            receiver.detach(self.session)
            if self._own_receiver:
                receiver.stop()

    def _reconnect_forever(self, receiver: Receiver) -> None:
        delays = backoff(self.options.backoff_first_s, 2.0, self.options.backoff_cap_s)
        attempt = 0
        while not self._stop.is_set():
            started = self.clock()
            reason = self._socket(receiver, attempt)
            if self.clock() - started > self.options.silence_timeout_s:
                delays = backoff(
                    self.options.backoff_first_s, 2.0, self.options.backoff_cap_s
                )  # it was healthy
            if self._stop.is_set():
                break
            wait = next(delays)
            log.warning("connection %s: %s; reconnecting in %.1fs", self.name, reason, wait)
            attempt += 1
            self._stop.wait(wait)

    def _socket(self, receiver: Receiver, attempt: int) -> str:
        """Connect, hand the socket to the receiver, wait until it ends or stop(); return why it ended."""
        try:
            url = self._url(attempt)
        except NoSocket as error:
            return str(error)
        ws = websocket.WebSocket(skip_utf8_validation=True)
        try:
            ws.connect(url, timeout=self.options.connect_timeout_s)  # type: ignore[no-untyped-call]
        except (OSError, websocket.WebSocketException) as error:
            self.event("disconnect", detail=f"connect failed: {error}")
            ws.shutdown()  # type: ignore[no-untyped-call]
            return f"connect failed: {error}"
        sock, ws.sock = ws.sock, None  # the receiver owns it from here: websocket-client is done with it
        assert sock is not None
        if self._stop.is_set():  # stopped while connecting
            sock.close()
            return "shutdown"
        receiver.open(self.session, sock, attempt, url)
        reason = self._ends.get()
        if reason == _STOP:
            receiver.close(self.session)
            while (reason := self._ends.get()) == _STOP:  # the receiver's own word on how it ended
                pass
        return reason

    def _url(self, attempt: int) -> str:
        """The URL of the next socket (the account stream's carries a fresh listenKey)."""
        return self.options.url
