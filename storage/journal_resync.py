"""The journal reader's slow path: find the next intact record after a corrupt span and keep the span's bytes.

Runs only where a record failed its length or CRC check, never on the hot read path.
"""

from __future__ import annotations

import contextlib
import os
import re
import zlib
from pathlib import Path

import orjson

from storage.journal_format import BODY, DROPPED, HEAD, MAX_BODY

CORRUPT_DIR = "_corrupt"  # in journal/: skipped bytes, kept verbatim (segments() lists only *.wal)
_MAX_KIND = DROPPED  # the highest record kind
# A record starts with its length (little-endian, at most 64 MiB: the 4th byte is 0..4) and has its kind byte
# (0..4) 24 bytes in; the regex finds those places in C, the CRC decides.
_CANDIDATE = re.compile(rb"(?=.{3}[\x00-\x04].{20}[\x00-\x04])", re.DOTALL)


def next_record(data: bytes, start: int) -> int | None:
    """The index of the first whole record in `data` at or after `start` whose length and CRC verify."""
    view = memoryview(data)
    size = len(data)
    for match in _CANDIDATE.finditer(data, start):
        at = match.start()
        length, crc = HEAD.unpack_from(data, at)
        stop = at + HEAD.size + length
        if length < BODY.size or length > MAX_BODY or stop > size or data[at + 24] > _MAX_KIND:
            continue
        if data[at + 25] <= length - BODY.size and zlib.crc32(view[at + HEAD.size : stop]) == crc:
            return at
    return None


def quarantine(root: Path, segment: str, offset: int, data: bytes) -> tuple[Path, bool]:
    """Keep skipped bytes as journal/_corrupt/<segment>-<offset>.bin; return (path, whether it is new).

    Idempotent (a re-read after a restart finds the file); the file appears whole or not at all.
    """
    folder = root / CORRUPT_DIR
    path = folder / f"{segment.rsplit('.', 1)[0]}-{offset}.bin"
    if path.exists():
        return path, False
    folder.mkdir(exist_ok=True)
    partial = folder / f".{path.name}.partial"
    try:
        with open(partial, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(partial, path)  # atomic on one filesystem
    except BaseException:
        with contextlib.suppress(OSError):
            partial.unlink()
        raise
    return path, True


def skip_event(segment: str, offset: int, size: int, kept: Path, tail: bool) -> bytes:
    """The stream_events payload (an EVENT record) that says what the reader skipped."""
    where = "to the segment's end (a torn or corrupt tail)" if tail else "before the next intact record"
    detail = (
        f"journal {segment}: {size} bytes at {offset}..{offset + size} failed the length/CRC check and "
        f"were skipped {where}; kept in {kept.parent.name}/{kept.name}"
    )
    return orjson.dumps({"event": "corrupt", "topic": None, "code": None, "detail": detail})
