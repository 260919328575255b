"""Order-book frames decoded with their decimals already floats: the converter's costliest frames.

A depth20 frame holds 80 decimal strings; `float()` on each is most of its conversion (~23 µs per frame with
orjson). msgspec parses them while decoding (~11 µs). The result has the shape the schemas converters read,
with floats where BingX sends strings, so `schemas/depth.py` stays the one converter; a frame this shape
does not fit is decoded by orjson instead and gets the converter's own checks and error.
"""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict

import msgspec

Level = tuple[float, float]


class _SnapshotData(TypedDict):
    bids: list[Level]
    asks: list[Level]
    s: NotRequired[str]
    T: NotRequired[int | str]


class _Snapshot(TypedDict):
    dataType: str
    data: _SnapshotData | None
    ts: NotRequired[int | str | None]
    code: NotRequired[int]


class _UpdateData(TypedDict):
    action: str
    lastUpdateId: int
    time: int | str
    bids: list[Level]
    asks: list[Level]
    s: NotRequired[str]


class _Update(TypedDict):
    dataType: str
    data: _UpdateData | None
    code: NotRequired[int]


# strict=False: "0.0314" decodes into a float field (msgspec's parser rounds exactly, like float()).
DECODERS: dict[str, msgspec.json.Decoder[Any]] = {
    "depth_snapshots": msgspec.json.Decoder(_Snapshot, strict=False),
    "book_updates": msgspec.json.Decoder(_Update, strict=False),
}


def decode(dataset: str, text: bytes) -> Any:
    """The frame with book levels as floats, or None if it does not have the expected shape."""
    decoder = DECODERS.get(dataset)
    if decoder is None:
        return None
    try:
        return decoder.decode(text)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
