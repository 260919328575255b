"""BingX swap WebSocket frame codec: gzip, Ping/Pong, subscribe messages, routing (BINGX_API.md §17).

Pure: no socket in here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import orjson
from zlib_ng import zlib_ng  # the stdlib's API and errors; inflates BingX's small frames ~1/3 faster

from exchange.errors import FrameError

__all__ = [
    "ACCOUNT",
    "ACK",
    "DATA",
    "PING",
    "PONG",
    "UNKNOWN",
    "Ack",
    "FrameError",
    "FrameKind",
    "classify",
    "data_topic",
    "gunzip",
    "is_ping",
    "loads",
    "parse_ack",
    "subscribe_message",
    "unpack",
    "unsubscribe_message",
]

PING: Final = "Ping"  # the server's heartbeat: gzip of these 4 bytes, not JSON, every ~5 s
PONG: Final = "Pong"  # the reply: a plain text frame, not gzipped, not JSON; no reply for ~30 s = dropped

FrameKind = Literal["data", "ack", "account", "unknown"]
DATA: Final = "data"
ACK: Final = "ack"
ACCOUNT: Final = "account"
UNKNOWN: Final = "unknown"

_PING: Final = PING.encode()
_DATA_TYPE: Final = b'"dataType":"'
_INFLATE_ERROR: type[Exception] = zlib_ng.error  # type: ignore[assignment]  # its stub says an instance
_GZIP_WBITS = 31  # zlib with a gzip header: half the cost of gzip.decompress (DESIGN.md)
_ACCOUNT_PAYLOADS = ("a", "o", "ac")  # ACCOUNT_UPDATE, ORDER_TRADE_UPDATE, ACCOUNT_CONFIG_UPDATE (§25)


@dataclass(frozen=True)
class Ack:
    """The server's answer to one sub/unsub request; code 0 means accepted."""

    id: str
    code: int
    msg: str

    @property
    def is_ok(self) -> bool:
        return self.code == 0


def unpack(payload: bytes, binary: bool) -> bytes:
    """Return the text bytes of one server frame: gunzip a binary frame; a text frame passes through.

    Raises FrameError for bytes that are not one gzip member or not UTF-8 (market data is ASCII: one test).
    """
    raw = gunzip(payload) if binary else payload
    if not raw.isascii():
        try:
            raw.decode()
        except UnicodeDecodeError as error:
            raise FrameError(f"frame of {len(raw)} bytes is not UTF-8: {error}") from error
    return raw


def gunzip(payload: bytes | bytearray | memoryview) -> bytes:
    """Return the bytes inside one binary server frame (one gzip member); raise FrameError if it is not."""
    try:
        return zlib_ng.decompress(payload, _GZIP_WBITS)
    except _INFLATE_ERROR as error:
        raise FrameError(f"frame of {len(payload)} bytes is not gzip: {error}") from error


def is_ping(raw: bytes) -> bool:
    """Tell whether an unpacked frame is the server's heartbeat, which must be answered with PONG."""
    return raw == _PING


def data_topic(raw: bytes) -> str | None:
    """The topic of a data frame found by a byte scan, without parsing it; None when there is none.

    The fast path for market data; a frame it does not recognise goes through `loads` and `classify`.
    The long ack shape carries "dataType": "" and must not count as data.
    """
    start = raw.find(_DATA_TYPE)
    if start < 0 or raw[start + 12 : start + 13] == b'"':
        return None
    return raw[start + 12 : raw.find(b'"', start + 12)].decode()


def loads(text: str | bytes) -> dict[str, Any]:
    """Parse a decoded non-Ping frame into its JSON object; raise FrameError for anything else."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise FrameError(f"frame is not JSON ({error}): {_preview(text)}") from error
    if not isinstance(obj, dict):
        raise FrameError(f"frame is JSON but not an object: {_preview(text)}")
    return obj


def subscribe_message(topic: str, request_id: str) -> str:
    """Build the text frame that subscribes to one topic (one topic per frame: an array gets no reply)."""
    return _request("sub", topic, request_id)


def unsubscribe_message(topic: str, request_id: str) -> str:
    """Build the text frame that unsubscribes from one topic."""
    return _request("unsub", topic, request_id)


def classify(obj: Mapping[str, Any]) -> FrameKind:
    """Route a parsed frame by BINGX_API.md §17's rule: dataType, then id, then account event, else unknown.

    Order matters: the long ack shape carries "dataType": "" and must not count as data.
    """
    if obj.get("dataType"):
        return DATA
    if "id" in obj:
        return ACK
    if "e" in obj and any(key in obj for key in _ACCOUNT_PAYLOADS):
        return ACCOUNT
    return UNKNOWN


def parse_ack(obj: Mapping[str, Any]) -> Ack:
    """Read an ack in either shape: {"id","code","msg"} or {"id","code","msg","dataType":"","data":null}.

    Raises FrameError when the id is missing or the code is not an integer.
    """
    request_id = obj.get("id")
    if request_id is None or request_id == "":
        raise FrameError(f"ack without an id: {_preview(obj)}")
    code = obj.get("code", 0)  # the short doc shape always has code; tolerate its absence as success
    try:
        code_int = int(code)
    except (TypeError, ValueError) as error:
        raise FrameError(f"ack {request_id} has a non-integer code {code!r}") from error
    if isinstance(code, bool) or (isinstance(code, float) and code != code_int):
        raise FrameError(f"ack {request_id} has a non-integer code {code!r}")
    msg = obj.get("msg")
    return Ack(id=str(request_id), code=code_int, msg="" if msg is None else str(msg))


def _request(kind: str, topic: str, request_id: str) -> str:
    if not topic or not request_id:
        raise ValueError(f"a {kind} request needs a topic and an id, got {topic!r}, {request_id!r}")
    return orjson.dumps({"id": request_id, "reqType": kind, "dataType": topic}).decode()


def _preview(value: object, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"
