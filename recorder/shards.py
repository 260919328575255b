"""`--shard i/n`: which symbols one of n recorders owns, and the name it gives its connections and files.

A symbol belongs to shard `int.from_bytes(sha256(symbol UTF-8)[:8], "big") % n`: stable across processes,
hosts, Python versions and languages (Python's own hash() is salted per process), so every shard computes
the same split from the same contract list, and a symbol listed later lands on exactly one shard.
"""

from __future__ import annotations

import hashlib
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0 <= index < count)."""

    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        """Read "i/n" (e.g. "0/2"); ValueError with one line naming what is allowed."""
        index, slash, count = text.strip().partition("/")
        if not (slash and index.isdigit() and count.isdigit() and 0 <= int(index) < int(count)):
            raise ValueError(f"--shard must be i/n with 0 <= i < n (e.g. 0/2), got {text!r}")
        return cls(int(index), int(count))

    def owns(self, symbol: str) -> bool:
        return of(symbol, self.count) == self.index

    def select(self, symbols: Iterable[str]) -> list[str]:
        """The symbols this shard records, in their given order."""
        return [symbol for symbol in symbols if self.owns(symbol)]

    @property
    def label(self) -> str:
        """ "s0of2"; empty for the single shard of an unsharded recorder."""
        return f"s{self.index}of{self.count}" if self.count > 1 else ""


def of(symbol: str, count: int) -> int:
    """The shard (0..count-1) a symbol belongs to."""
    return int.from_bytes(hashlib.sha256(symbol.encode()).digest()[:8], "big") % count


def identity(shard: Shard, host: str | None = None) -> str:
    """Host and shard ("box-1.s0of2"): leads connection ids and lake file names, so recorders sharing a
    lake (and started in the same millisecond) never make the same id or name."""
    name = re.sub(r"[^A-Za-z0-9.]+", "", host if host is not None else socket.gethostname()) or "host"
    return ".".join(filter(None, [name, shard.label]))
