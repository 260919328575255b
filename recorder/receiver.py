"""One thread does all the I/O of every connection's socket (a selector loop): the receive path's hot loop.

A thread per socket doubled the CPU per frame at full rate (measured: ~11 µs against ~6 µs for five busy
sockets): each recv and each zlib call releases the GIL, and five threads then hand it to each other
thousands of times a second. So this thread owns every session (recorder/session.py) and every socket
once its handshake is done: it reads, feeds the session, journals, sends and closes what the session says,
and ticks the sessions' timers. Other threads reach a session only through `call`, which runs a function
here between two reads; connections (recorder/connection.py) keep their own threads only to connect and
back off.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from recorder.session import Actions, Session
from recorder.shared import Numbered

log = logging.getLogger(__name__)

CHUNK = 1 << 16
RECV_TIMEOUT_S = 0.05
T = TypeVar("T")


@dataclass
class Attached:
    """A session this receiver owns, where its records go, and who to tell when its socket ends."""

    session: Session
    journal: Numbered
    ended: Callable[[str], None]  # called on the receiver thread with the reason
    sock: socket.socket | None = None


class Receiver:
    """Owns a selector over its sessions' sockets; every change to them runs on its own thread."""

    def __init__(self, name: str = "receiver", clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._attached: dict[Session, Attached] = {}
        self._calls: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    # --- any thread ---------------------------------------------------------------------------------

    def attach(self, session: Session, journal: Numbered, ended: Callable[[str], None]) -> None:
        """Own `session` from now on; `ended(reason)` hears each end of its sockets."""

        def adopt() -> None:
            session.owner.take()
            self._attached[session] = Attached(session, journal, ended)

        self.call(adopt)

    def open(self, session: Session, sock: socket.socket, attempt: int, url: str) -> None:
        """Read `sock` (its handshake done) for `session` from now on."""

        def start() -> None:
            attached = self._attached[session]
            if self._stopping:  # too late: the loop is gone or going
                sock.close()
                attached.ended("the receiver stopped")
                return
            sock.settimeout(RECV_TIMEOUT_S)
            # The selector says readable, but an SSL read can still wait for the rest of a TLS record;
            # the timeout bounds how long one socket can hold up the others (and a blocked send).
            self._selector.register(sock, selectors.EVENT_READ, attached)
            attached.sock = sock
            self._act(attached, session.opened(self.clock(), attempt, url))

        self.call(start)

    def detach(self, session: Session) -> None:
        """Own `session` no more (its connection stopped; its socket is closed already)."""

        def drop() -> None:
            attached = self._attached.pop(session, None)
            if attached is not None and attached.sock is not None:
                self._end(attached, "shutdown")
            session.owner.release()

        self.call(drop)

    def close(self, session: Session) -> None:
        """End `session`'s socket, if it has one, politely (a Close frame): we are stopping."""
        self.call(lambda: self._act(self._attached[session], session.close()))

    def cut(self, session: Session, reason: str) -> None:
        """End `session`'s socket now (its credential was refused); the connection reconnects."""

        def end() -> None:
            attached = self._attached[session]
            if attached.sock is not None:
                self._end(attached, reason)

        self.call(end)

    def call(self, function: Callable[[], T]) -> T:
        """Run `function` on the receiver thread, between two reads, and return what it returns.

        Once the receiver stopped it runs on the caller's thread: the sessions it owned are released.
        """
        if threading.current_thread() is self._thread:
            return function()
        done = threading.Event()
        result: list[T] = []
        errors: list[BaseException] = []

        def run() -> None:
            try:
                result.append(function())
            except Exception as error:  # raised in the caller, not in the receive loop
                errors.append(error)
            finally:
                done.set()

        with self._lock:
            stopped = self._stopping
            if not stopped:
                self._calls.append(run)
        if stopped:
            self._thread.join()
            return function()
        self._wake()
        done.wait()
        if errors:
            raise errors[0]
        return result[0]

    def stop(self) -> None:
        """End every socket still open, stop the loop and release the sessions."""
        with self._lock:
            self._stopping = True
        self._wake()
        self._thread.join(5)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    # --- the receiver thread ------------------------------------------------------------------------

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # the wake-up buffer is full: the loop wakes anyway
            self._wake_w.send(b"\0")

    def _loop(self) -> None:
        next_tick = 0.0
        try:
            while True:
                with self._lock:
                    calls, self._calls = self._calls, []
                    stopping = self._stopping
                for call in calls:
                    call()
                if stopping:
                    return
                if calls:  # a call may have given a session something to do (a topic to subscribe)
                    next_tick = 0.0
                timeout = min(1.0, max(0.0, next_tick - self.clock()))
                for key, _ in self._selector.select(timeout):
                    attached: Attached | None = key.data
                    if attached is None:  # the wake-up socket
                        with contextlib.suppress(BlockingIOError):
                            self._wake_r.recv(4096)
                        continue
                    self._read(attached)
                now = self.clock()
                if now >= next_tick:
                    next_tick = self._tick(now)
        finally:
            for attached in list(self._attached.values()):
                if attached.sock is not None:
                    self._guarded(attached, partial(self._end, attached, "the receiver stopped"))
                attached.session.owner.release()
            with self._lock:
                calls, self._calls = self._calls, []
            for call in calls:  # callers waiting on a call made just before stop() are not left hanging
                call()

    def _read(self, attached: Attached) -> None:
        sock = attached.sock
        assert sock is not None
        try:
            data = sock.recv(CHUNK)
            pending = getattr(sock, "pending", None)  # an SSL socket's decrypted bytes: no selector sees them
            while data and pending is not None and pending():
                data += sock.recv(CHUNK)
        except TimeoutError:  # the rest of a TLS record is still on its way
            return
        except OSError as error:
            self._end(attached, f"{type(error).__name__}: {error}")
            return
        if not data:
            self._end(attached, "the server closed the socket")
            return
        self._guarded(attached, lambda: self._act(attached, attached.session.receive(data, self.clock())))

    def _tick(self, now: float) -> float:
        """Tick every session that is due; return when the next one is."""
        next_tick = now + 1.0
        for attached in list(self._attached.values()):
            session = attached.session
            if session.next_tick <= now:
                self._guarded(attached, partial(self._tick_one, attached, now))
            next_tick = min(next_tick, session.next_tick)
        return next_tick

    def _tick_one(self, attached: Attached, now: float) -> None:
        self._act(attached, attached.session.tick(now))

    def _act(self, attached: Attached, actions: Actions) -> None:
        attached.journal.extend(actions.records)
        sock = attached.sock
        if sock is None:
            return
        try:
            for data in actions.send:
                sock.sendall(data)
        except OSError as error:
            if actions.end is None:
                self._end(attached, f"sending failed: {type(error).__name__}: {error}")
                return
        if actions.end is not None:
            self._end(attached, actions.end)

    def _end(self, attached: Attached, reason: str) -> None:
        sock, attached.sock = attached.sock, None
        if sock is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        attached.journal.extend(attached.session.closed(reason).records)
        attached.ended(reason)

    def _guarded(self, attached: Attached, step: Callable[[], None]) -> None:
        """Run one session's step; a bug in it ends that session's socket, never the loop."""
        try:
            step()
        except Exception as error:
            log.error("connection %s: receiving failed", attached.session.name, exc_info=error)
            if attached.sock is not None:
                with contextlib.suppress(Exception):
                    self._end(attached, f"receiving failed: {type(error).__name__}: {error}")
