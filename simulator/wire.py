"""BingX swap WebSocket wire encoding: gzip members inside pre-built binary frames. Pure: no sockets."""

from __future__ import annotations

import struct
import zlib
from typing import Any

import orjson

ACK_SHAPES = ("long", "short", "alternate")


def gzip_member(data: bytes, level: int = 6) -> bytes:
    """Compress into one gzip member (BingX gzips every server frame, BINGX_API.md §17)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def binary_frame(payload: bytes) -> bytes:
    """Build an unmasked, final, binary RFC 6455 frame (server frames are never masked)."""
    size = len(payload)
    if size < 126:
        header = struct.pack("!BB", 0x82, size)
    elif size < 1 << 16:
        header = struct.pack("!BBH", 0x82, 126, size)
    else:
        header = struct.pack("!BBQ", 0x82, 127, size)
    return header + payload


def encode(message: dict[str, Any]) -> tuple[str, bytes]:
    """Return (JSON text, ready-to-write frame bytes) for one server message."""
    raw = orjson.dumps(message)
    return raw.decode(), binary_frame(gzip_member(raw))


def encode_raw(payload: bytes) -> bytes:
    """Frame already-final bytes (used for garbage frames that must not be gzip)."""
    return binary_frame(payload)


PING_FRAME = binary_frame(gzip_member(b"Ping"))


def ack(request_id: Any, code: int = 0, msg: str = "", long: bool = True) -> dict[str, Any]:
    """Build a sub/unsub reply in BingX's long (captured) or short (documented) shape."""
    if long:
        return {"id": request_id, "code": code, "msg": msg, "dataType": "", "data": None}
    return {"id": request_id, "code": code, "msg": msg}
