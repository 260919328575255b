"""One thread reads every connection's socket (a selector loop): the receive path's hot loop.

A thread per socket doubled the CPU per frame at full rate (measured: ~11 µs against ~6 µs for five busy
sockets): each recv and each zlib call releases the GIL, and five threads then hand it to each other
thousands of times a second. Connections keep their own threads for connecting, pacing subscriptions and
noticing silence; reading, Pong and journaling happen here.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Source(Protocol):
    """What the receiver needs of a connection."""

    def pump(self) -> None:
        """The socket is readable: read it and handle every whole frame (raises when the session is over)."""

    def failed(self, error: BaseException) -> None:
        """The session is over (closed, broken, protocol error); called once, on the receiver thread."""


class Receiver:
    """Owns a selector over the sockets of its sources; registration changes run on its own thread."""

    def __init__(self, name: str = "receiver") -> None:
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._changes: list[Callable[[], None]] = []
        self._lock = threading.Lock()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def add(self, sock: socket.socket, source: Source) -> None:
        """Start reading `sock` for `source` (returns once registered)."""

        def register() -> None:
            self._selector.register(sock, selectors.EVENT_READ, source)

        self._change(register)

    def discard(self, sock: socket.socket) -> None:
        """Stop reading `sock`; once this returns the receiver never touches it or its source again."""

        def unregister() -> None:
            if sock in self._selector.get_map():
                self._selector.unregister(sock)

        self._change(unregister)

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
        self._wake()
        self._thread.join(5)
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _change(self, change: Callable[[], None]) -> None:
        """Run `change` on the receiver thread (between two pumps) and wait for it; re-raise its error."""
        if threading.current_thread() is self._thread:
            change()
            return
        done = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            try:
                change()
            except Exception as error:  # raised in the caller, not in the receive loop
                errors.append(error)
            finally:
                done.set()

        with self._lock:
            if self._stopping:
                return
            self._changes.append(run)
        self._wake()
        done.wait()
        if errors:
            raise errors[0]

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # the wake-up buffer is full: the loop wakes anyway
            self._wake_w.send(b"\0")

    def _loop(self) -> None:
        while True:
            with self._lock:
                changes, self._changes = self._changes, []
                stopping = self._stopping
            for change in changes:
                change()
            if stopping:
                return
            for key, _ in self._selector.select(timeout=1.0):
                source: Source | None = key.data
                if source is None:  # the wake-up socket
                    with contextlib.suppress(BlockingIOError):
                        self._wake_r.recv(4096)
                    continue
                try:
                    source.pump()
                except Exception as error:  # the source's session ended: stop reading, tell it
                    if key.fileobj in self._selector.get_map():
                        self._selector.unregister(key.fileobj)
                    try:
                        source.failed(error)
                    except Exception:  # the receive loop must outlive any one connection
                        log.exception("receiver: a connection failed to take its error")
