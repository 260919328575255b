"""Top-N book snapshots kept from incrDepth (books/), per symbol: not converted from any one BingX message.

Rows come from books.tracker, live in the recorder (`record --book-snapshots 25@100ms`) or afterwards from
the lake (`bingx-recorder books`); both give the same rows, so the view's dedupe keeps one of each.
"""

from __future__ import annotations

import pyarrow as pa

from schemas.dataset import AMOUNT, MS, Dataset

_SIDE = pa.list_(AMOUNT)

BOOK_SNAPSHOTS = Dataset(
    name="book_snapshots",
    fields=(
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("snapshot_time", MS, nullable=False),  # the instant the row shows the book at
        pa.field("event_time", MS, nullable=False),  # exchange time of the last update applied
        pa.field("update_id", pa.int64(), nullable=False),  # the last update applied
        # interval: every X ms while the book changes; snapshot: an `all` was applied (resync_reason says
        # why one was needed); checkpoint: full depth every K minutes, where `book --at` starts rebuilding
        pa.field("trigger", pa.string(), nullable=False),
        pa.field("resync_reason", pa.string()),
        *(
            pa.field(name, _SIDE, nullable=False)
            for name in ("bid_prices", "bid_qtys", "ask_prices", "ask_qtys")
        ),
    ),
    key=("symbol", "snapshot_time", "trigger"),
    event_time="snapshot_time",
    description="Books kept from incrDepth: top-N every X ms, on each (re)snapshot, full depth every K min.",
)
