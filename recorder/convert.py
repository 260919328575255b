"""Journal → lake: raw_messages, the normalized datasets and stream_events, in chunks sealed into batches.

The journal offset is committed after a batch's Parquet files are durable: at-least-once, views dedupe.
"""

from __future__ import annotations

import base64
import logging
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa

from books.tracker import BookTracker, SnapshotOptions
from recorder import books
from schemas import DATASETS, dataset_for_channel
from schemas.account_stream import ACCOUNT_EVENTS, from_account_event, is_account_event
from schemas.dataset import ConversionError, Dataset, Row
from storage.journal import BINARY, DATA, DROPPED, EVENT, JournalReader, Record
from storage.lake import Lake, LakeBatch
from storage.state import State
from storage.validation import table_from_rows

log = logging.getLogger(__name__)

SOURCE = "stream"
_BOOK_INPUTS = frozenset(("book_updates", "depth_snapshots"))
UNATTRIBUTED = "raw_messages"  # _rejects folder for frames no dataset can claim (bad gzip, bad JSON, unknown)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DATA_TYPE = b'"dataType":"'
CHUNK_RECORDS = 4096  # records read and converted at a time: their rows wait as dicts, then as Arrow
CHUNK_BYTES = 2 << 20  # ~4,096 whole-market frames: the journal read window
PARTIALS = ".partials"  # in journal/: the hidden files of the batch being written


def received_at(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


class Converter:
    """Turns journal records into lake files; one instance per data dir at a time (see recorder.process).

    `step` converts the next chunk of records into an open LakeBatch; `seal` makes that batch's files appear
    (one per partition) and only then commits the journal offset. The seal interval, not the chunk size,
    decides the file count: a kill -9 before a seal loses nothing, the next start converts from the commit.
    """

    def __init__(
        self,
        data_dir: Path,
        lake: Lake | None = None,
        # A batch is sealed after this many records whatever the time (~60 s of the whole market), so a
        # backlog still lands in steps. Each seal costs ~1.5 ms a partition file (~1,000 for the market):
        # at 500,000 that was ~10% of the converter's CPU while it worked through a backlog. The last seal
        # at shutdown does not grow with it: spilled row groups are already written.
        batch_records: int = 1_000_000,
        archive: Path | None = None,  # keep converted journal segments there instead of deleting them
        book_snapshots: SnapshotOptions | None = None,  # None: books kept for resyncs, no snapshot rows
        on_resync: Callable[[str, str], None] | None = None,  # (topic, reason): the recorder resubscribes
    ) -> None:
        self.reader = JournalReader(data_dir / "journal", State(data_dir / "state"), archive)
        self.lake = lake or Lake(data_dir / "lake")
        self.batch_records = batch_records
        self.rejects: Counter[tuple[str, str]] = Counter()
        self.rows: Counter[str] = Counter()
        self.records = 0  # records sealed into the lake
        self.pending = 0  # records converted into the open batch, not yet sealed
        self._batch: LakeBatch | None = None
        self._offset = self.reader.committed()
        # The open batch's hidden files, listed as they are created: a kill -9 leaves them behind, and the
        # next start deletes them (readers never see them, but they would take disk space forever).
        self._partials = data_dir / "journal" / PARTIALS
        self._partials_log: IO[str] | None = None
        self._discard_partials()
        self._datasets: dict[str, Dataset | None] = {}
        # Every incrDepth book, in journal order (books/tracker.py); `bingx-recorder books` replays the lake
        # through the same tracker and gets the same book_snapshots rows.
        self.books = BookTracker(book_snapshots)
        self._on_resync = on_resync

    def step(self) -> int:
        """Convert the next chunk of the journal into the open batch; return its size (0: caught up)."""
        chunk = self.reader.read(self._offset, max_records=CHUNK_RECORDS, max_bytes=CHUNK_BYTES)
        if not chunk:
            return 0
        if self._batch is None:
            self._partials.parent.mkdir(parents=True, exist_ok=True)
            self._partials_log = self._partials.open("a")
            self._batch = self.lake.batch(on_open=self._note_partial, combined=True)
        try:
            self._convert(chunk, self._batch)
        except BaseException:
            self.abandon()
            raise
        self._offset = chunk[-1].end
        self.pending += len(chunk)
        return len(chunk)

    def seal(self) -> None:
        """Make the open batch's files appear (durably), then commit the journal offset past its records."""
        if self._batch is None:
            return
        batch, self._batch = self._batch, None
        try:
            batch.close()
        except BaseException:
            self.abandon()
            raise
        self._forget_partials()
        self.reader.commit(self._offset)
        self.records += self.pending
        self.pending = 0

    def abandon(self) -> None:
        """Drop the open batch; the next step starts again from the committed offset."""
        if self._batch is not None:
            self._batch.abandon()
            self._batch = None
        self._forget_partials()
        self._offset = self.reader.committed()
        self.pending = 0

    def _note_partial(self, path: str) -> None:
        assert self._partials_log is not None
        self._partials_log.write(path + "\n")
        self._partials_log.flush()  # in the OS before the file exists: survives a kill -9 of this process

    def _forget_partials(self) -> None:
        if self._partials_log is not None:
            self._partials_log.close()
            self._partials_log = None
        self._partials.unlink(missing_ok=True)

    def _discard_partials(self) -> None:
        if not self._partials.exists():
            return
        found = self.lake.discard_partials(self._partials.read_text().splitlines())
        if found:
            log.warning(
                "converter: deleted %d hidden files a stopped batch left; it is converted again", found
            )
        self._partials.unlink()

    def convert_once(self) -> int:
        """Convert up to `batch_records` records and seal them; return how many there were."""
        while self.pending < self.batch_records and self.step():
            pass
        count = self.pending
        self.seal()
        return count

    def drain(self) -> int:
        """Convert until the journal is caught up; return the number of records converted."""
        total = 0
        while count := self.convert_once():
            total += count
        return total

    def _convert(self, chunk: Sequence[Record], batch: LakeBatch) -> None:
        raw: list[Record] = []
        topics: list[str | None] = []
        rows: dict[str, list[Row]] = defaultdict(list)
        events: list[Row] = []
        for record in chunk:
            if record.kind == EVENT:
                event = self._event(record)
                events.append(event)
                if event["event"] == "subscribed" and str(event["topic"]).endswith("@incrDepth"):
                    rows["_books"].append(event)  # a new subscription: its `all` comes first
            elif record.kind == BINARY:
                payload = "base64:" + base64.b64encode(record.payload).decode()
                self._reject(UNATTRIBUTED, payload, "bad gzip", "not one gzip member of UTF-8 text", record)
            else:
                raw.append(record)
                topics.append(
                    self._normalize(record, rows) if record.kind != DROPPED else self._dropped(record)
                )
        if raw:
            batch.append(DATASETS["raw_messages"], _raw_table(raw, topics))
            self.rows["raw_messages"] += len(raw)
        if "_books" in rows:
            events += self._keep_books(rows)
        for name, found in rows.items():
            batch.append(DATASETS[name], table_from_rows(DATASETS[name], found))
            self.rows[name] += len(found)
        if events:
            batch.append(DATASETS["stream_events"], table_from_rows(DATASETS["stream_events"], events))
            self.rows["stream_events"] += len(events)

    def _normalize(self, record: Record, out: dict[str, list[Row]]) -> str | None:
        """Convert one DATA or CONTROL record; return its topic (None for control frames)."""
        text = record.payload
        message: Any = None
        if record.kind == DATA:  # book frames: a decoder that parses their decimals in C (recorder/books.py)
            known = self._dataset(_topic(text) or "")
            if known is not None:
                message = books.decode(known.name, text)  # None for other datasets
        if message is None:
            try:
                message = orjson.loads(text)
            except orjson.JSONDecodeError as error:
                self._reject(UNATTRIBUTED, text.decode(errors="replace"), "bad JSON", str(error), record)
                return None
        if record.kind != DATA or not isinstance(message, dict):
            if isinstance(message, dict) and is_account_event(message):
                self._account(message, record, out)
                return "account"  # raw_messages.topic of the listenKey stream's frames
            return None
        topic = str(message.get("dataType"))
        dataset = self._dataset(topic)
        if dataset is None or dataset.from_stream is None:
            self._reject(UNATTRIBUTED, text.decode(), "unknown topic", topic, record)
            return topic
        try:
            rows = dataset.from_stream(message)
        except (ConversionError, KeyError, TypeError, ValueError) as error:
            self._reject(
                dataset.name, text.decode(), "conversion failed", f"{type(error).__name__}: {error}", record
            )
            return topic
        stamp = record.received_at_us  # Arrow takes µs ints for the timestamp column: no datetime each
        for row in rows:
            row["received_at"] = stamp
            row["source"] = SOURCE
        if dataset.name in _BOOK_INPUTS:
            for row in rows:
                row["_record"] = record  # for _keep_books; removed before writing
            out["_books"].extend(rows)
        out[dataset.name].extend(rows)
        return topic

    def _account(self, message: dict[str, Any], record: Record, out: dict[str, list[Row]]) -> None:
        """An account stream event (journaled as a control frame): into its dataset, or to _rejects."""
        try:
            dataset, rows = from_account_event(message)
        except ConversionError as error:
            name = ACCOUNT_EVENTS[str(message.get("e"))].name
            self._reject(
                name, record.payload.decode(errors="replace"), "conversion failed", str(error), record
            )
            return
        if dataset is None:
            return
        for row in rows:
            row["received_at"] = record.received_at_us
            row["source"] = SOURCE
        out[dataset.name].extend(rows)

    def _keep_books(self, rows: dict[str, list[Row]]) -> list[Row]:
        """Feed the chunk's book frames to the tracker in journal order; stream_events rows for its resyncs.

        A resync is a `resync` row with the reason, keyed by the frame that showed it, and a request to the
        recorder to resubscribe the topic (a new `all` follows). Forward id jumps are normal (BINGX_API.md
        §21); the view keeps one row per (symbol, update_id) whatever happened.
        """
        tracker, found = self.books, []
        for item in rows.pop("_books"):
            record = item.pop("_record", None)
            if record is None:  # a subscribed event
                tracker.subscribed(str(item["topic"]).partition("@")[0])
                continue
            if "update_id" in item:
                tracker.update(item)
            elif item["source"] == SOURCE:
                tracker.depth(item)
            snapshots, resyncs = tracker.take()
            if snapshots:
                rows["book_snapshots"].extend(snapshots)
            for resync in resyncs:
                topic = f"{resync.symbol}@incrDepth"
                found.append(self._derived(record, "resync", item, resync.reason, topic))
                if self._on_resync is not None:
                    self._on_resync(topic, resync.reason)
        return found

    def _derived(self, record: Record, event: str, row: Row, detail: str, topic: str) -> Row:
        # Keyed by the data frame's own (connection, seq): unique, since that seq is not an event record.
        return {
            "connection": record.connection,
            "seq": record.seq,
            "event": event,
            "topic": topic,
            "code": None,
            "detail": detail,
            "received_at": row["received_at"],
            "source": SOURCE,
        }

    def _dropped(self, record: Record) -> str | None:
        """Data for a topic not acked with code 0: kept raw; quarantined too if no dataset knows the topic."""
        topic = _topic(record.payload)
        self.rows["dropped"] += 1
        if topic is None or self._dataset(topic) is None:
            self._reject(
                UNATTRIBUTED, record.payload.decode(errors="replace"), "unknown topic", str(topic), record
            )
        return topic

    def _dataset(self, topic: str) -> Dataset | None:
        if topic not in self._datasets:
            _, _, channel = topic.partition("@")
            self._datasets[topic] = dataset_for_channel(channel) if channel else None
        return self._datasets[topic]

    def _event(self, record: Record) -> Row:
        body: dict[str, Any] = orjson.loads(record.payload)
        return {
            "connection": record.connection,
            "seq": record.seq,
            "event": body["event"],
            "topic": body.get("topic"),
            "code": body.get("code"),
            "detail": body.get("detail"),
            "received_at": record.received_at_us,
            "source": SOURCE,
        }

    def _reject(self, dataset: str, raw: str, kind: str, detail: str, record: Record) -> None:
        reason = f"{kind}: {detail}"
        if not self.rejects[dataset, kind]:
            log.warning(
                "quarantined a %s message (%s); further ones of this kind are only counted", dataset, reason
            )
        self.rejects[dataset, kind] += 1
        if self._batch is not None:  # sealed with the batch: one file per dataset per seal, not per message
            self._batch.reject(dataset, raw, reason, SOURCE, received_at(record.received_at_us))
        else:
            self.lake.reject(dataset, raw, reason, SOURCE, received_at(record.received_at_us))


def _raw_table(records: list[Record], topics: list[str | None]) -> pa.Table:
    # One C-level transpose instead of a Python pass per column; the source is a repeated constant.
    received, connections, seqs, _, payloads, _ = zip(*records, strict=True)
    return pa.table(
        {
            "connection": pa.array(connections, pa.string()),
            "seq": pa.array(seqs, pa.int64()),
            "topic": pa.array(topics, pa.string()),
            "text": _texts(payloads),
            "received_at": pa.array(received, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            "source": pa.repeat(SOURCE, len(records)),
        }
    )


def _texts(payloads: Sequence[bytes]) -> pa.Array:
    """The payloads as a string column, without a Python str each (all UTF-8 but for rare garbage)."""
    try:
        return pa.array(payloads, pa.string())
    except pa.ArrowInvalid:  # invalid UTF-8 somewhere: keep what can be kept, as replacement characters
        return pa.array([payload.decode(errors="replace") for payload in payloads], pa.string())


def _topic(payload: bytes) -> str | None:
    """The dataType of a frame's raw text, without parsing it (None when it has none)."""
    start = payload.find(_DATA_TYPE)
    if start < 0:
        return None
    begin = start + len(_DATA_TYPE)
    return payload[begin : payload.find(b'"', begin)].decode(errors="replace")
