"""Datasets the recorder writes directly, without a converter: connection events and raw frames."""

from __future__ import annotations

import pyarrow as pa

from schemas.dataset import Dataset

# connect | subscribed | refused | disconnect | reconnect | silence | gap | resync | reject
# | corrupt (journal bytes skipped) | journal_error (the journal could not be written)
STREAM_EVENTS = Dataset(
    name="stream_events",
    fields=(
        pa.field("connection", pa.string(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("event", pa.string(), nullable=False),
        pa.field("topic", pa.string()),
        pa.field("code", pa.int64()),
        pa.field("detail", pa.string()),
    ),
    key=("connection", "seq"),
    event_time="received_at",
    description="Every connect, subscribe ack or refusal, disconnect, silence, gap and resync, in order.",
    partitions=(),
)

RAW_MESSAGES = Dataset(
    name="raw_messages",
    fields=(
        pa.field("connection", pa.string(), nullable=False),
        pa.field("seq", pa.int64(), nullable=False),
        pa.field("topic", pa.string()),
        pa.field("text", pa.string(), nullable=False),  # the decompressed frame, as received
    ),
    key=("connection", "seq"),
    event_time="received_at",
    description="Every received frame as decompressed text, by connection and sequence number.",
    partitions=(),
)
