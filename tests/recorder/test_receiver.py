"""The receiver: one thread pumps every registered socket, reports a source's end once, and never touches
a socket again after discard() returns."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from recorder.receiver import Receiver


class Source:
    """Reads whatever is there and keeps it; raises on EOF or on a b"!" byte."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.data = b""
        self.errors: list[BaseException] = []
        self.threads: set[str] = set()

    def pump(self) -> None:
        self.threads.add(threading.current_thread().name)
        chunk = self.sock.recv(4096)
        if not chunk:
            raise ConnectionError("eof")
        self.data += chunk
        if b"!" in chunk:
            raise ValueError("a bug in a frame handler")

    def failed(self, error: BaseException) -> None:
        self.errors.append(error)


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _one_more_round(source: Source, theirs: socket.socket) -> None:
    """Send `source` a byte and wait until it is read: a barrier instead of a sleep (the loop ran again)."""
    before = len(source.data)
    theirs.sendall(b".")
    wait_for(lambda: len(source.data) > before)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver("test-receiver")
    yield receiver
    receiver.stop()


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made = [socket.socketpair() for _ in range(3)]
    yield made
    for ours, theirs in made:
        ours.close()
        theirs.close()


def test_every_socket_is_pumped_on_one_thread(
    receiver: Receiver, pairs: list[tuple[socket.socket, socket.socket]]
) -> None:
    sources = [Source(ours) for ours, _ in pairs]
    for source in sources:
        receiver.add(source.sock, source)
    for index, (_, theirs) in enumerate(pairs):
        theirs.sendall(f"hello {index}".encode())
    wait_for(lambda: all(source.data for source in sources))
    assert [source.data for source in sources] == [b"hello 0", b"hello 1", b"hello 2"]
    assert set().union(*(source.threads for source in sources)) == {"test-receiver"}


def test_an_ended_source_is_told_once_and_the_others_keep_flowing(
    receiver: Receiver, pairs: list[tuple[socket.socket, socket.socket]]
) -> None:
    broken, closed, healthy = (Source(ours) for ours, _ in pairs)
    for source in (broken, closed, healthy):
        receiver.add(source.sock, source)
    pairs[0][1].sendall(b"!")
    pairs[1][1].shutdown(socket.SHUT_WR)
    wait_for(lambda: bool(broken.errors and closed.errors))
    pairs[0][1].sendall(b"more")  # unregistered: never pumped again
    pairs[2][1].sendall(b"still here")
    wait_for(lambda: healthy.data == b"still here")
    _one_more_round(healthy, pairs[2][1])  # the loop polled again with "more" waiting on the broken one
    assert [type(e) for e in broken.errors] == [ValueError] and broken.data == b"!"
    assert [type(e) for e in closed.errors] == [ConnectionError]


def test_after_discard_returns_the_socket_is_never_read(
    receiver: Receiver, pairs: list[tuple[socket.socket, socket.socket]]
) -> None:
    ours, theirs = pairs[0]
    source = Source(ours)
    receiver.add(ours, source)
    theirs.sendall(b"one")
    wait_for(lambda: source.data == b"one")
    receiver.discard(ours)
    receiver.discard(ours)  # twice is harmless
    theirs.sendall(b"two")
    witness = Source(pairs[1][0])
    receiver.add(witness.sock, witness)
    _one_more_round(witness, pairs[1][1])  # the loop polled again with "two" waiting on the discarded one
    _one_more_round(witness, pairs[1][1])
    assert source.data == b"one" and ours.recv(16) == b"two"


def test_a_failed_registration_raises_in_the_caller_and_the_loop_survives(
    receiver: Receiver, pairs: list[tuple[socket.socket, socket.socket]]
) -> None:
    closed, other = socket.socketpair()
    closed.close()
    other.close()
    with pytest.raises(ValueError):
        receiver.add(closed, Source(closed))
    ours, theirs = pairs[0]
    source = Source(ours)
    receiver.add(ours, source)
    theirs.sendall(b"ok")
    wait_for(lambda: source.data == b"ok")
