"""Per-connection state and the WebSocket server's knobs. Plain data: no I/O here."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from websockets.asyncio.server import ServerConnection

from simulator.ws_feed import FeedOptions


@dataclass
class WsOptions:
    ping_interval_s: float = 5.0
    pong_timeout_s: float = 30.0
    ack_shape: str = "alternate"  # "long" (captured), "short" (documented) or "alternate" between them
    max_topics: int = 200
    leak_refused: bool = False  # send one data frame for a topic refused with 80403, as BingX does
    max_buffer_bytes: int = 64 << 20  # a client this far behind is cut off ("slow consumer")
    tick_s: float = 0.01  # scheduler granularity
    feed: FeedOptions = field(default_factory=FeedOptions)


@dataclass(eq=False)
class Client:
    id: int
    conn: ServerConnection
    topics: set[str] = field(default_factory=set)
    last_pong: float = field(default_factory=time.monotonic)
    acks: int = 0
    snapshot_ids: dict[str, int] = field(default_factory=dict)  # incrDepth topic -> id of its `all`
    close_reason: str | None = None
