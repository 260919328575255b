"""The session core as bytes in, actions out: no socket, no sleep, time passed in by hand.

The server's bytes come from the simulator's own encoder (simulator/wire.py: BingX's gzip members in
binary frames); what the session sends is read back by unmasking it (tests/recorder/test_wire.py).
"""

from __future__ import annotations

import threading
from typing import Any

import orjson
import pytest

from recorder.account import EXPIRED, AccountSession, Liveness
from recorder.connection import ConnectionOptions
from recorder.session import Actions, Session
from recorder.shared import WrongThread
from recorder.wire import OPCODE_CLOSE, OPCODE_PING, OPCODE_PONG, OPCODE_TEXT
from simulator.wire import PING_FRAME, ack, binary_frame, encode, encode_raw, gzip_member
from storage.journal import BINARY, CONTROL, DATA, DROPPED, EVENT
from tests.recorder.test_wire import client_frames, server_frame

URL = "wss://open-api-swap.bingx.com/swap-market"
OPTIONS = ConnectionOptions(url=URL, silence_timeout_s=15.0, subscribes_per_second=4.0, ack_timeout_s=10.0)
TRADE = {
    "code": 0,
    "dataType": "BTC-USDT@trade",
    "data": [{"T": 1, "s": "BTC-USDT", "m": True, "p": "1", "q": "2"}],
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def session_with(*topics: str, options: ConnectionOptions = OPTIONS) -> tuple[Session, Clock]:
    clock = Clock()
    return Session("t-00", topics, options, clock=clock, mask=lambda: b"\x0f\x0e\x0d\x0c"), clock


def sent(actions: Actions) -> list[tuple[int, Any]]:
    """What the session sent: JSON text frames parsed, anything else as bytes."""
    out: list[tuple[int, Any]] = []
    for opcode, payload in client_frames(b"".join(actions.send)):
        is_json = opcode == OPCODE_TEXT and payload.startswith(b"{")
        out.append((opcode, orjson.loads(payload) if is_json else payload))
    return out


def events(actions: Actions) -> list[tuple[str, str | None, str | None]]:
    bodies = [orjson.loads(payload) for kind, payload in actions.records if kind == EVENT]
    return [(body["event"], body["topic"], body["detail"]) for body in bodies]


def data(message: dict[str, Any]) -> bytes:
    return encode(message)[1]


def opened_and_acked(*topics: str) -> tuple[Session, Clock]:
    """A session on a fresh socket with every topic subscribed (the clock moved on to pace the requests)."""
    session, clock = session_with(*topics)
    requests = sent(session.opened(clock.now, 0, URL))
    while len(requests) < len(topics):
        clock.now += 0.25
        requests += sent(session.tick(clock.now))
    acks = b"".join(data(ack(body["id"])) for _, body in requests)
    assert [e for e, _, _ in events(session.receive(acks, clock.now))] == ["subscribed"] * len(topics)
    return session, clock


def test_a_new_socket_is_journaled_and_its_topics_are_subscribed_at_the_paced_rate() -> None:
    session, clock = session_with("BTC-USDT@trade", "ETH-USDT@trade")
    first = session.opened(clock.now, 0, URL)
    assert events(first) == [("connect", None, URL)]
    assert sent(first) == [(OPCODE_TEXT, {"id": "t-00-1", "reqType": "sub", "dataType": "BTC-USDT@trade"})]
    clock.now += 0.1  # 4 a second: the next token is 0.25 s away
    assert sent(session.tick(clock.now)) == []
    assert session.next_tick <= clock.now + 0.02
    clock.now += 0.15
    assert sent(session.tick(clock.now)) == [
        (OPCODE_TEXT, {"id": "t-00-2", "reqType": "sub", "dataType": "ETH-USDT@trade"})
    ]


def test_data_is_journaled_as_it_came_once_acked_and_marked_dropped_before() -> None:
    session, clock = session_with("BTC-USDT@trade")
    session.opened(clock.now, 0, URL)
    early = session.receive(data(TRADE), clock.now)  # BingX sends data before the ack at times
    assert early.records == [(DROPPED, orjson.dumps(TRADE))] and early.send == []
    acked = session.receive(data(ack("t-00-1")) + data(TRADE), clock.now)
    assert [kind for kind, _ in acked.records] == [CONTROL, EVENT, DATA]
    assert acked.records[2] == (DATA, orjson.dumps(TRADE))
    assert events(acked) == [("subscribed", "BTC-USDT@trade", None)]
    snapshot = session.snapshot()
    assert snapshot.acked == {"BTC-USDT@trade"} and snapshot.frames == 3
    assert snapshot.seen["BTC-USDT@trade"][:2] == (2, clock.now)


def test_a_refused_topic_is_an_event_and_its_leaked_data_stays_dropped() -> None:
    session, clock = session_with("NOPE-USDT@trade")
    session.opened(clock.now, 0, URL)
    refusal = ack("t-00-1", code=80015, msg="dataType not support")
    answer = session.receive(data(refusal) + data({**TRADE, "dataType": "NOPE-USDT@trade"}), clock.now)
    assert [kind for kind, _ in answer.records] == [CONTROL, EVENT, DROPPED]
    assert events(answer) == [("refused", "NOPE-USDT@trade", "dataType not support")]
    assert session.snapshot().refused == {"NOPE-USDT@trade": 80015} and session.refusals == 1


def test_pings_are_answered_and_never_journaled() -> None:
    session, clock = opened_and_acked("BTC-USDT@trade")
    answer = session.receive(PING_FRAME + server_frame(OPCODE_PING, b"ws-level"), clock.now)
    assert answer.records == []
    assert sent(answer) == [(OPCODE_TEXT, b"Pong"), (OPCODE_PONG, b"ws-level")]


def test_a_frame_split_across_reads_is_journaled_once_whole() -> None:
    session, clock = opened_and_acked("BTC-USDT@trade")
    frame = data(TRADE)
    assert session.receive(frame[:5], clock.now).records == []
    assert session.receive(frame[5:], clock.now).records == [(DATA, orjson.dumps(TRADE))]


def test_garbage_is_journaled_raw_and_the_next_frame_still_lands() -> None:
    session, clock = opened_and_acked("BTC-USDT@trade")
    garbage = (
        encode_raw(b"\x1f\x8bnot gzip")
        + server_frame(OPCODE_TEXT, b"\xff\xfe\xfd!")  # a text frame that is not UTF-8
        + binary_frame(gzip_member(b"{not json"))
        + data(TRADE)
    )
    answer = session.receive(garbage, clock.now)
    assert answer.records == [
        (BINARY, b"\x1f\x8bnot gzip"),
        (BINARY, b"\xff\xfe\xfd!"),
        (CONTROL, b"{not json"),
        (DATA, orjson.dumps(TRADE)),
    ]
    assert answer.end is None


@pytest.mark.parametrize(
    ("quiet", "reason"),
    [("everything", "silent for more than 15.0s"), ("pings", "no Ping for more than 15.0s")],
)
def test_silence_ends_the_socket_and_the_next_needs_new_acks(quiet: str, reason: str) -> None:
    session, clock = opened_and_acked("BTC-USDT@trade")
    for _ in range(31):  # 15.5 s in half seconds; data keeps coming unless all is quiet
        clock.now += 0.5
        if quiet == "pings":
            assert session.receive(data(TRADE), clock.now).end is None
        ticked = session.tick(clock.now)
        if ticked.end is not None:
            break
    assert ticked.end == reason
    assert events(ticked) == [("silence", None, reason)]
    closed = session.closed(reason)
    assert events(closed) == [("disconnect", None, reason)]
    assert session.snapshot().acked == frozenset() and session.silences == 1
    again = session.opened(clock.now, 1, URL)
    assert events(again)[0] == ("reconnect", None, URL) and session.reconnects == 1
    assert session.receive(data(TRADE), clock.now).records[0][0] == DROPPED


def test_a_lost_ack_is_sent_again_under_its_id_and_a_late_ack_still_counts() -> None:
    session, clock = session_with("BTC-USDT@trade")
    session.opened(clock.now, 0, URL)
    clock.now += 10.5
    resent = session.tick(clock.now)
    assert events(resent) == [("resync", None, "no ack for t-00-1 within 10.0s; sent again")]
    assert sent(resent) == [(OPCODE_TEXT, {"id": "t-00-1", "reqType": "sub", "dataType": "BTC-USDT@trade"})]
    answer = session.receive(data(ack("t-00-1")) + data(ack("t-00-1")), clock.now)
    assert events(answer) == [("subscribed", "BTC-USDT@trade", None)]  # the second copy is no news


def test_commands_become_paced_requests() -> None:
    session, clock = opened_and_acked("BTC-USDT@trade")
    assert session.resubscribe("BTC-USDT@trade") and not session.resubscribe("ETH-USDT@trade")
    session.add("ETH-USDT@trade")
    session.remove("ETH-USDT@trade")
    requests = []
    for _ in range(4):
        clock.now += 0.25
        requests += [(body["reqType"], body["dataType"]) for _, body in sent(session.tick(clock.now))]
    assert requests == [
        ("unsub", "BTC-USDT@trade"),
        ("sub", "BTC-USDT@trade"),
        ("sub", "ETH-USDT@trade"),
        ("unsub", "ETH-USDT@trade"),
    ]
    assert "BTC-USDT@trade" not in session.snapshot().acked  # until the new subscription is acked


def test_a_close_from_the_server_is_answered_and_ends_the_socket() -> None:
    session, clock = opened_and_acked("BTC-USDT@trade")
    answer = session.receive(data(TRADE) + server_frame(OPCODE_CLOSE, b"\x03\xe8bye"), clock.now)
    assert answer.records == [(DATA, orjson.dumps(TRADE))]
    assert sent(answer) == [(OPCODE_CLOSE, b"\x03\xe8")]
    assert answer.end == "closed by the server 03e8"


def test_our_close_says_goodbye_once() -> None:
    session, _ = opened_and_acked("BTC-USDT@trade")
    goodbye = session.close()
    assert sent(goodbye) == [(OPCODE_CLOSE, b"\x03\xe8")] and goodbye.end == "shutdown"
    session.closed("shutdown")
    assert session.close().end is None  # no socket, nothing to close


def test_a_protocol_violation_ends_the_socket_and_the_frames_before_it_land() -> None:
    session, clock = opened_and_acked("BTC-USDT@trade")
    answer = session.receive(data(TRADE) + bytes([0x81, 0x81]) + b"mask" + b"x" + data(TRADE), clock.now)
    assert answer.records == [(DATA, orjson.dumps(TRADE))]
    assert answer.end == "ProtocolError: reserved bits set or masked frame from the server"


def test_only_the_owning_thread_may_touch_a_session() -> None:
    session, clock = session_with("BTC-USDT@trade")
    taken = threading.Thread(target=session.owner.take, name="the-receiver")
    taken.start()
    taken.join()
    for touch in (
        lambda: session.receive(data(TRADE), clock.now),
        lambda: session.tick(clock.now),
        lambda: session.add("ETH-USDT@trade"),
        session.snapshot,
    ):
        with pytest.raises(WrongThread, match="session t-00 belongs to thread 'the-receiver'"):
            touch()
    session.owner.release()  # its owner stopped: the next thread to touch it takes it
    assert session.snapshot().topics == {"BTC-USDT@trade"}


def test_an_expired_listen_key_is_hashed_and_ends_the_socket_after_the_frames_behind_it() -> None:
    liveness = Liveness(dark_since_ms=None)
    session = AccountSession("acct", OPTIONS, liveness)
    key = "Ex4mpleListenKeyThatIsASecret0123456789abcdef"
    session.opened(1000.0, 0, f"{URL}?listenKey={key}")
    assert liveness.live
    expired = {"e": "listenKeyExpired", "E": 1, "listenKey": key}
    order = {"e": "ORDER_TRADE_UPDATE", "E": 2, "o": {"s": "BTC-USDT"}}
    answer = session.receive(data(expired) + data(order), 1000.0)
    assert answer.end == EXPIRED
    assert key.encode() not in b"".join(payload for _, payload in answer.records)
    assert [kind for kind, _ in answer.records] == [CONTROL, EVENT, CONTROL]
    assert events(answer)[0][0] == "listen_key_expired" and not liveness.live
