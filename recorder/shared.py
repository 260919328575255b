"""What the receive path shares between threads, and the check that nothing else is.

A connection's state belongs to one thread (the receiver's, recorder/receiver.py); other threads reach it
only through the receiver's queue of calls. `Owner` is the check: an object that has one raises
WrongThread when a thread other than its owner touches it. The few things several threads do touch are
lock-guarded types named here and elsewhere: `Numbered` (a connection's journal records), the
JournalWriter, the shared subscription Pacer (recorder/topics.py).
"""

from __future__ import annotations

import threading
import time

from storage.journal import JournalWriter


class WrongThread(RuntimeError):
    """A thread touched state another thread owns: a bug in the receive path."""


class Owner:
    """The one thread an object's state belongs to: the creating thread until another `take`s it."""

    __slots__ = ("ident", "name", "thread")

    def __init__(self, name: str) -> None:
        self.name = name
        self.take()

    def take(self) -> None:
        """The calling thread owns the object from now on."""
        self.ident: int | None = threading.get_ident()
        self.thread = threading.current_thread().name

    def release(self) -> None:
        """Nobody owns it any more (its owner stopped): the next thread to touch it takes it."""
        self.ident = None

    def check(self) -> None:
        ident = threading.get_ident()
        if ident == self.ident:
            return
        if self.ident is None:
            self.take()
            return
        raise WrongThread(
            f"{self.name} belongs to thread {self.thread!r}, touched from {threading.current_thread().name!r}"
        )


class Numbered:
    """One connection's journal records, numbered 0, 1, 2, … in the order they are appended (lock-guarded).

    The receiver appends the frames and the events of its sessions; the connection's own thread and the
    account stream append events (a failed connect, listenKey steps). Each batch is stamped once: its
    records arrived together.
    """

    def __init__(self, journal: JournalWriter, name: str) -> None:
        self.journal = journal
        self.name = name
        self._seq = 0
        self._lock = threading.Lock()

    def extend(self, records: list[tuple[int, bytes]]) -> None:
        if not records:
            return
        with self._lock:
            at, name, seq = time.time_ns() // 1000, self.name, self._seq
            self.journal.append_all(
                [(at, name, seq + index, kind, payload) for index, (kind, payload) in enumerate(records)]
            )
            self._seq = seq + len(records)

    def append(self, kind: int, payload: bytes) -> None:
        self.extend([(kind, payload)])
