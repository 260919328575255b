"""The recorder: journal, connections sharded over topics, the converter, the contracts refresh, shutdown."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from books.tracker import SnapshotOptions
from recorder.connection import Connection, ConnectionOptions
from recorder.errors import JournalFailed, TopicError
from recorder.process import SEAL_INTERVAL_S, ConverterProcess, ConverterThread
from recorder.receiver import Receiver
from recorder.shards import Shard, identity
from recorder.stats import Sealed
from recorder.supervision import Supervisor
from recorder.topics import MAX_CONNECTIONS, Pacer, shard, topics_for
from schemas import CONTRACTS_PATH, DATASETS
from schemas.dataset import ConversionError
from storage.journal import JournalWriter

log = logging.getLogger(__name__)

TRADABLE = 1  # contracts status: 1 online; 25 paused, 5 pre-online and 0 offline are refused by the WS


# (journal, receiver, connection name) -> an object with start() and stop(): recorder.account.AccountStream
AccountFactory = Callable[[JournalWriter, Receiver, str], Any]


class Rest(Protocol):
    def get(self, path: str, params: dict[str, Any]) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RecordOptions:
    channels: Sequence[str]
    symbols: Sequence[str] | None  # None: every tradable contract, refreshed every refresh_s
    connection: ConnectionOptions
    topics_per_connection: int = 200
    max_connections: int = MAX_CONNECTIONS
    global_subscribes_per_second: float | None = None  # set if BingX turns out to count per IP
    refresh_s: float = 900.0
    converter: str = "process"  # "process" or "thread"
    stop_grace_s: float = 3.0  # SIGTERM to exit stays under 5 s
    log_level: str = "WARNING"
    journal: dict[str, float] = field(default_factory=dict)  # JournalWriter keyword options
    journal_archive: Path | None = None  # converted segments move here instead of being deleted
    lake_interval_s: float = SEAL_INTERVAL_S  # how often the converter makes its files appear
    heal_rest_url: str | None = None  # heal closed outage windows from this REST API (None: --no-heal)
    heal_every_s: float = 60.0
    # book_snapshots rows written live (None: off; books are still kept for resyncs at the default tolerance)
    book_snapshots: SnapshotOptions | None = None
    resubscribe_after_s: float = 5.0  # a topic is resubscribed for a resync at most this often
    # --shard i/n: this recorder's share of the symbols (recorder.shards)
    shard: Shard = field(default_factory=Shard)
    lake: str = ""  # --lake: a path or s3://bucket/prefix; "" is <data-dir>/lake


def tradable_symbols(rest: Rest) -> tuple[list[str], set[str]]:
    """(sorted tradable symbols, every listed symbol) from /quote/contracts, through its converter.

    A contract the converter refuses is left out with a warning: one odd entry must not stop the recorder
    from starting on the others.
    """
    contracts = DATASETS["contracts"]
    assert contracts.from_rest is not None
    envelope = rest.get(CONTRACTS_PATH, {})
    rows = []
    for item in envelope.get("data") or []:
        try:
            rows += contracts.from_rest({**envelope, "data": [item]}, {})
        except ConversionError as error:
            log.warning("contracts: %s; that contract is left out", error)
    tradable = sorted(row["symbol"] for row in rows if row["status"] == TRADABLE)
    return tradable, {row["symbol"] for row in rows}


def check_symbols(symbols: Sequence[str], rest: Rest) -> None:
    """Refuse symbols /quote/contracts does not list as tradable (one line); exchange errors pass through."""
    tradable, listed = tradable_symbols(rest)
    unknown = [s for s in symbols if s not in listed]
    if unknown:
        raise TopicError(f"unknown symbol(s) {', '.join(unknown)}: not in {CONTRACTS_PATH}")
    paused = [s for s in symbols if s not in set(tradable)]
    if paused:
        raise TopicError(f"symbol(s) {', '.join(paused)} are listed but not tradable (contracts status != 1)")


class _Kept:
    """A Rest whose /quote/contracts answers are also written to the contracts dataset (recorder.healing)."""

    def __init__(self, rest: Rest, lake: Callable[[], Any]) -> None:
        self.rest, self.lake = rest, lake

    def get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        envelope = self.rest.get(path, params)
        if path == CONTRACTS_PATH:
            from recorder.healing import keep_contracts

            try:
                keep_contracts(self.lake(), envelope)
            except Exception as error:  # a bad row is no reason to stop listing symbols
                log.warning("could not keep the contracts refresh: %s", error)
        return envelope


class Recorder:
    """Owns the journal writer, the connections and the converter for one data dir."""

    def __init__(
        self,
        data_dir: Path,
        options: RecordOptions,
        rest: Rest | None = None,
        account: AccountFactory
        | None = None,  # record --account: builds the account stream (recorder/account.py)
    ) -> None:
        self.data_dir = data_dir
        self.account_factory = account
        self.account: Any = None
        self.options = options
        self.rest = rest
        # Unique across restarts (the ms), hosts and shards sharing a lake (the identity)
        self.name = identity(options.shard)
        self.run_id = f"{self.name}-{time.time_ns() // 1_000_000:x}"
        self.connections: list[Connection] = []
        self.owner: dict[str, Connection] = {}
        self._pacer = (
            Pacer(options.global_subscribes_per_second) if options.global_subscribes_per_second else None
        )
        self._journal: JournalWriter | None = None
        self._receiver: Receiver | None = None  # one thread reads every socket (recorder/receiver.py)
        self.resubscribes = 0
        self.sealed = Sealed()  # what the converter reports after each seal (recorder/stats.py)
        self.healing: Any = None
        self._resyncs: dict[str, str] = {}  # topic -> reason, waiting for the main loop (any thread adds)
        self._resynced_at: dict[str, float] = {}
        self._resync_lock = threading.Lock()

    def run(self, stop: threading.Event, duration_s: float | None = None) -> None:
        """Record until `stop` is set or `duration_s` passes; then flush and convert what is left."""
        options = self.options
        symbols = (
            options.shard.select(options.symbols) if options.symbols is not None else self._all_symbols()
        )
        if options.shard.count > 1:
            log.info("shard %d/%d: %d symbols", options.shard.index, options.shard.count, len(symbols))
        topics = topics_for(symbols, options.channels)
        groups = shard(topics, options.topics_per_connection, options.max_connections)
        self._journal = JournalWriter(self.data_dir / "journal", **options.journal)  # type: ignore[arg-type]
        converter = Supervisor(self._converter)
        self._receiver = Receiver()
        healing = self.healing = self._healing()
        try:
            if self.account_factory is not None:
                self.account = self.account_factory(self._journal, self._receiver, f"{self.run_id}-account")
                self.account.start()
            for group in groups:
                self._connect(group)
            log.info("recording %d topics over %d connections", len(topics), len(self.connections))
            deadline = None if duration_s is None else time.monotonic() + duration_s
            next_refresh = time.monotonic() + options.refresh_s
            if options.symbols is not None:
                self._keep_contracts()
            while not stop.is_set():
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                if now >= next_refresh:
                    next_refresh = now + options.refresh_s
                    self.refresh() if options.symbols is None else self._keep_contracts()
                converter.check()  # raises ConverterFailed if it keeps dying
                self._resubscribe(now)
                stop.wait(min(0.2, max(0.0, (deadline or now + 1.0) - now)))
        finally:
            if healing is not None:
                healing.stop()
            self._shutdown(converter)

    def refresh(self) -> None:
        """Subscribe newly listed contracts and unsubscribe delisted ones (symbols=all)."""
        try:
            symbols = self._all_symbols()
        except Exception as error:  # a failed refresh must never stop recording
            log.warning("contracts refresh failed, keeping %d topics: %s", len(self.owner), error)
            return
        wanted = set(topics_for(symbols, self.options.channels))
        for topic in sorted(set(self.owner) - wanted):
            self.owner.pop(topic).remove(topic)
        for topic in sorted(wanted - set(self.owner)):
            self._place(topic)

    def resync(self, topic: str, reason: str) -> None:
        """A book of `topic` broke (the converter says why): resubscribe it soon (thread-safe)."""
        with self._resync_lock:
            self._resyncs.setdefault(topic, reason)

    def _resubscribe(self, now: float) -> None:
        """Resubscribe topics whose books resynced; one topic at most every resubscribe_after_s."""
        with self._resync_lock:
            due = [
                t
                for t in self._resyncs
                if now - self._resynced_at.get(t, -1e18) >= self.options.resubscribe_after_s
            ]
            reasons = {topic: self._resyncs.pop(topic) for topic in due}
        for topic, reason in reasons.items():
            connection = self.owner.get(topic)
            if connection is not None and connection.resubscribe(topic):
                self._resynced_at[topic] = now
                self.resubscribes += 1
                log.info("resubscribing %s: %s", topic, reason)

    def _all_symbols(self) -> list[str]:
        if self.rest is None:
            raise TopicError("--symbols all needs the REST API to list contracts")
        return self.options.shard.select(tradable_symbols(_Kept(self.rest, self.lake))[0])

    def _keep_contracts(self) -> None:
        """Fetch the contract list only to keep it (listing, pause and delisting times, for coverage)."""
        if self.rest is None:
            return
        try:
            _Kept(self.rest, self.lake).get(CONTRACTS_PATH, {})
        except Exception as error:  # a failed refresh must never stop recording
            log.warning("contracts refresh failed: %s", error)

    def _healing(self) -> Any:
        if self.options.heal_rest_url is None:
            return None
        from recorder.healing import AutoHeal

        return AutoHeal(
            self.data_dir,
            self.options.heal_rest_url,
            self.options.heal_every_s,
            lake=self.options.lake,
            owns=self.options.shard.owns if self.options.shard.count > 1 else None,
        ).start()

    def lake(self) -> Any:
        """The lake this recorder writes (storage.lake.Lake), its files named after the host and shard."""
        from storage.lake import lake_at

        return lake_at(self.data_dir, self.options.lake, self.name)

    def _connect(self, topics: list[str]) -> Connection:
        assert self._journal is not None
        name = f"{self.run_id}-{len(self.connections):02d}"
        connection = Connection(
            name, topics, self._journal, self.options.connection, self._pacer, receiver=self._receiver
        )
        self.connections.append(connection)
        self.owner.update(dict.fromkeys(topics, connection))
        connection.start()
        return connection

    def _place(self, topic: str) -> None:
        for connection in self.connections:
            if len(connection.topics) < self.options.topics_per_connection:
                connection.add(topic)
                self.owner[topic] = connection
                return
        if len(self.connections) < self.options.max_connections:
            self._connect([topic])
        else:
            log.error("no room for %s: %d connections are full", topic, len(self.connections))

    def _converter(self) -> ConverterProcess | ConverterThread:
        options = self.options
        arguments: dict[str, Any] = {
            "grace_s": options.stop_grace_s,
            "archive": options.journal_archive,
            "seal_interval_s": options.lake_interval_s,
            "book_snapshots": options.book_snapshots,
            "on_resync": self.resync,
            "on_sealed": self.sealed.sealed,
            "lake": (options.lake, self.name),
        }
        if options.converter == "thread":
            return ConverterThread(self.data_dir, **arguments)
        return ConverterProcess(self.data_dir, log_level=options.log_level, **arguments)

    def _shutdown(self, converter: Supervisor) -> None:
        if self.account is not None:
            try:
                self.account.stop()  # journals its last events (disconnect, listen_key_deleted) first
            except Exception:  # the market connections and the journal must still shut down cleanly
                log.exception("account stream: stopping failed")
        for connection in self.connections:
            connection.stop()
        for connection in self.connections:
            connection.join(1.0)
        if self._receiver is not None:
            self._receiver.stop()
        if self._journal is not None:
            self._journal.close()
        converter.finish(self.options.stop_grace_s + 0.5)
        if self._journal is not None and self._journal.lost:
            raise JournalFailed(
                f"{self._journal.lost} frames could not be written to {self._journal.root} before exit "
                "(the disk stayed full); everything journaled before is intact"
            )
