"""The receiver: one thread reads every socket and owns every session, journals what they say, tells a
connection once when its socket ended, never reads a socket it ended, and survives a bug in one session."""

from __future__ import annotations

import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from recorder.connection import ConnectionOptions
from recorder.receiver import Receiver
from recorder.session import Actions, Session
from recorder.shared import Numbered, WrongThread
from simulator.wire import ack, encode
from storage.journal import DATA, EVENT, JournalReader, JournalWriter
from storage.state import State

OPTIONS = ConnectionOptions(url="ws://test", subscribes_per_second=1000.0)
TOPIC = "BTC-USDT@trade"


def trade(n: int) -> bytes:
    return encode({"code": 0, "dataType": TOPIC, "data": [{"T": n, "p": "1", "q": "1", "m": True}]})[1]


class Buggy(Session):
    """A session with a bug: a read of the lone byte "!" makes it raise."""

    def receive(self, data: bytes, now: float) -> Actions:
        if data == b"!":
            raise ValueError("a bug in a frame handler")
        return super().receive(data, now)


class Wired:
    """One session on the receiver over a socket pair; `ends` hears each end of its socket."""

    def __init__(self, receiver: Receiver, journal: JournalWriter, name: str, kind: type[Session] = Session):
        self.session = kind(name, [TOPIC], OPTIONS)
        self.ends: queue.Queue[str] = queue.Queue()
        receiver.attach(self.session, Numbered(journal, name), self.ends.put)
        self.ours, self.theirs = socket.socketpair()
        self.theirs.settimeout(5)
        receiver.open(self.session, self.ours, 0, "ws://test")
        request = self.theirs.recv(4096)  # the subscription, sent at once
        assert request
        self.theirs.sendall(encode(ack(f"{name}-1"))[1])
        wait_until(
            receiver, lambda: self.session.frames == 1
        )  # acked: later bytes come in a read of their own

    def close(self) -> None:
        self.ours.close()
        self.theirs.close()


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[JournalWriter]:
    with JournalWriter(tmp_path / "journal") as writer:
        yield writer


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver("test-receiver")
    yield receiver
    receiver.stop()


def landed(journal: JournalWriter, tmp_path: Path) -> dict[str, list[int]]:
    """Each connection's trade ids as journaled, in seq order."""
    journal.flush()
    found: dict[str, list[int]] = {}
    for record in JournalReader(tmp_path / "journal", State(tmp_path / "state")):
        if record.kind == DATA:
            found.setdefault(record.connection, []).append(orjson.loads(record.payload)["data"][0]["T"])
    return found


def wait_until(receiver: Receiver, condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Ask the receiver (a round trip through its loop) until `condition()` holds."""
    deadline = time.monotonic() + seconds
    while not receiver.call(condition):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_every_socket_is_read_and_journaled_on_one_thread_in_order(
    receiver: Receiver, journal: JournalWriter, tmp_path: Path
) -> None:
    wired = [Wired(receiver, journal, f"c{index}") for index in range(3)]
    for index, one in enumerate(wired):
        one.theirs.sendall(b"".join(trade(index * 100 + n) for n in range(50)))
    wait_until(receiver, lambda: all(one.session.frames == 51 for one in wired))  # the ack and 50 trades
    assert {one.session.owner.thread for one in wired} == {"test-receiver"}
    with pytest.raises(WrongThread):
        wired[0].session.tick(0.0)  # this thread does not own it
    assert landed(journal, tmp_path) == {f"c{i}": [i * 100 + n for n in range(50)] for i in range(3)}
    for one in wired:
        one.close()


def test_an_ended_socket_is_told_once_and_the_others_keep_flowing(
    receiver: Receiver, journal: JournalWriter, tmp_path: Path
) -> None:
    buggy = Wired(receiver, journal, "buggy", Buggy)
    closed = Wired(receiver, journal, "closed")
    healthy = Wired(receiver, journal, "healthy")
    buggy.theirs.sendall(b"!")
    closed.theirs.shutdown(socket.SHUT_WR)
    assert buggy.ends.get(timeout=5).startswith("receiving failed: ValueError: a bug in a frame handler")
    assert closed.ends.get(timeout=5) == "the server closed the socket"
    healthy.theirs.sendall(trade(1))
    wait_until(receiver, lambda: healthy.session.frames == 2)
    assert buggy.ends.empty() and closed.ends.empty()
    assert not receiver.call(lambda: buggy.session.connected or closed.session.connected)
    for one in (buggy, closed, healthy):
        one.close()


def test_after_cut_returns_the_socket_is_never_read_again(
    receiver: Receiver, journal: JournalWriter, tmp_path: Path
) -> None:
    one = Wired(receiver, journal, "one")
    one.theirs.sendall(trade(1))
    wait_until(receiver, lambda: one.session.frames == 2)
    receiver.cut(one.session, "its key was refused")
    assert one.ends.get(timeout=5) == "its key was refused"
    with pytest.raises(OSError):
        one.theirs.sendall(trade(2) * 1000)  # the receiver closed its end
        one.theirs.sendall(trade(2) * 1000)
    assert landed(journal, tmp_path) == {"one": [1]}
    journal.flush()
    records = list(JournalReader(tmp_path / "journal", State(tmp_path / "state")))
    last = orjson.loads(records[-1].payload)
    assert records[-1].kind == EVENT and (last["event"], last["detail"]) == (
        "disconnect",
        "its key was refused",
    )
    one.close()


def test_a_call_runs_on_the_receiver_its_error_raises_in_the_caller_and_after_stop_inline(
    journal: JournalWriter,
) -> None:
    receiver = Receiver("test-receiver")
    assert receiver.call(lambda: threading.current_thread().name) == "test-receiver"
    with pytest.raises(ZeroDivisionError):
        receiver.call(lambda: 1 / 0)
    one = Wired(receiver, journal, "one")
    receiver.stop()
    assert one.ends.get(timeout=5) == "the receiver stopped"
    assert receiver.call(lambda: threading.current_thread().name) == threading.current_thread().name
    assert not one.session.snapshot().connected  # released: this thread may read it now
    one.close()
