"""REST snapshots (contracts, premium index, open interest, tickers, depth, book tickers, last prices) into
their datasets with source='poll', once or every N seconds until stopped.

A scheduled poll rides out what the exchange does daily: a round that fails (5xx after the client's
retries, a business error, a 418) is logged and counted and the next round comes as usual (after a ban,
once the ban has lasted). One bad item in an answer goes to _rejects with its reason; its neighbours land.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from backfill.endpoint import Endpoint
from backfill.errors import PagingError
from exchange.errors import Banned, ExchangeError
from exchange.rest import RestClient
from schemas.dataset import ConversionError, Dataset, Row
from storage.lake import Lake

log = logging.getLogger("poll")


@dataclass(frozen=True)
class Snapshot(Endpoint):
    """One pollable endpoint: its dataset, whose path, paging and fixed parameters the registry holds."""

    @property
    def per_symbol(self) -> bool:  # the endpoint requires `symbol`; otherwise one call returns every contract
        return self.spec.paging == "per_symbol"

    @property
    def params(self) -> tuple[tuple[str, Any], ...]:
        return self.spec.rest_params


def snapshots(*datasets: str) -> dict[str, Snapshot]:
    """The snapshots of these datasets, by CLI name."""
    return {snapshot.name: snapshot for snapshot in map(Snapshot, datasets)}


SNAPSHOTS = snapshots(
    "contracts", "premium_index", "open_interest", "tickers", "depth_snapshots", "book_tickers", "last_prices"
)


class Stopped(Exception):
    """Raised by an `interruptible_sleep` when stop is set while it waits (a retry backoff, pacing)."""


def interruptible_sleep(stop: threading.Event) -> Callable[[float], None]:
    """A `sleep` for RestClient and Limiter that wakes at once, raising Stopped, when `stop` is set."""

    def sleep(seconds: float) -> None:
        if stop.wait(seconds):
            raise Stopped

    return sleep


@dataclass
class PollSummary:
    name: str
    rounds: int = 0
    rows: int = 0
    files: int = 0
    failed: int = 0  # rounds that wrote nothing because the exchange failed them
    rejected: int = 0  # items kept in _rejects
    last_error: str = ""

    def line(self) -> str:
        failed = f" ({self.failed} failed)" if self.failed else ""
        rejected = f"; {self.rejected} items kept in _rejects" if self.rejected else ""
        return (
            f"poll {self.name}: {self.rounds} rounds{failed}, {self.rows} rows written in {self.files} files"
            f"{rejected}"
        )


def poll_once(
    client: RestClient, lake: Lake, snapshot: Snapshot, symbols: list[str] | None
) -> tuple[int, int]:
    """Take one snapshot of every requested symbol (None: all); write it; return (rows, files)."""
    rows, files, _ = _poll_round(client, lake, snapshot, symbols)
    return rows, files


def _poll_round(
    client: RestClient, lake: Lake, snapshot: Snapshot, symbols: list[str] | None
) -> tuple[int, int, int]:
    """poll_once, also returning how many items went to _rejects."""
    dataset = snapshot.spec
    if snapshot.per_symbol and symbols is None:
        raise ValueError(f"poll {snapshot.name} needs --symbols (the endpoint takes one symbol per call)")
    queries = [{"symbol": s} for s in symbols] if snapshot.per_symbol and symbols else [{}]
    rows: list[Row] = []
    rejected = 0
    for query in queries:
        query.update(snapshot.params)
        envelope = client.get(snapshot.path, query)
        received_at = datetime.now(UTC)
        try:
            converted, bad = _convert(lake, dataset, snapshot, envelope, query, received_at)
        except PagingError as error:
            if len(queries) == 1:
                raise
            log.warning("%s (the other symbols' answers are written)", error)  # one symbol's bad answer
            converted, bad = [], 1
        rejected += bad
        if symbols is not None and not snapshot.per_symbol:
            converted = [row for row in converted if row["symbol"] in symbols]
        for row in converted:
            row["received_at"], row["source"] = received_at, "poll"
        rows += converted
    return (
        len(rows),
        len(lake.write(dataset, rows, combined=True)),
        rejected,
    )  # one file per round, every symbol


def _convert(
    lake: Lake,
    dataset: Dataset,
    snapshot: Snapshot,
    envelope: dict[str, Any],
    query: Mapping[str, Any],
    received_at: datetime,
) -> tuple[list[Row], int]:
    """Convert an answer; if that fails, item by item, keeping each bad item in _rejects with its reason.

    Returns (rows, items rejected). Raises PagingError when the answer as a whole is unusable.
    """
    assert dataset.from_rest is not None
    try:
        return dataset.from_rest(envelope, query), 0
    except ConversionError as error:
        data = envelope.get("data")
        if not isinstance(data, list) or len(data) < 2:
            lake.reject(dataset.name, str(envelope), str(error), "poll", received_at)
            raise PagingError(f"{snapshot.path} {query}: {error} (kept in _rejects/{dataset.name})") from None
    rows: list[Row] = []
    reasons: list[str] = []
    for item in data:
        try:
            rows += dataset.from_rest({**envelope, "data": [item]}, query)
        except ConversionError as error:
            reasons.append(str(error))
            lake.reject(dataset.name, _raw(item), str(error), "poll", received_at)
    log.warning(
        "%s: %d of %d items kept in _rejects/%s, the rest written; first: %s",
        snapshot.path,
        len(reasons),
        len(data),
        dataset.name,
        reasons[0],
    )
    return rows, len(reasons)


def _raw(item: Any) -> str:
    try:
        return orjson.dumps(item).decode()
    except TypeError:
        return repr(item)


def poll(
    client: RestClient,
    lake: Lake,
    snapshot: Snapshot,
    symbols: list[str] | None,
    *,
    every_s: float | None = None,
    count: int | None = None,
    stop: threading.Event | None = None,
    on_round: Callable[[int, int], None] | None = None,
    wait: Callable[[float], bool] | None = None,
) -> PollSummary:
    """Poll once (every_s None) or every `every_s` seconds until `count` rounds or `stop` is set.

    Once, an exchange error propagates. On a schedule, a round the exchange fails is logged and counted
    (summary.failed) and the loop goes on; after a ban (418) the next round waits the ban out. Only a
    ValueError (bad arguments) ends the loop. `wait(seconds)` returns True to stop (default: stop.wait);
    Stopped raised by an interruptible client sleep ends the loop as a stop does.
    """
    stop = stop or threading.Event()
    wait = wait or stop.wait
    summary = PollSummary(snapshot.name)
    rounds = 1 if every_s is None else count
    while rounds is None or summary.rounds < rounds:
        started = datetime.now(UTC)
        pause = every_s or 0.0
        try:
            rows, files, rejected = _poll_round(client, lake, snapshot, symbols)
        except Stopped:
            break
        except (ExchangeError, PagingError) as error:
            if every_s is None:
                raise
            if isinstance(error, Banned):  # the ban runs from its answer, not from the round's start
                pause, started = max(pause, error.retry_after_s), datetime.now(UTC)
            _count_failure(summary, snapshot, error, pause)
        else:
            summary.rows, summary.files = summary.rows + rows, summary.files + files
            summary.rejected += rejected
            if on_round is not None:
                on_round(rows, files)
            log.debug("poll %s: %d rows", snapshot.name, rows)  # a line a round: too many under `run`
        summary.rounds += 1
        if every_s is None or (rounds is not None and summary.rounds >= rounds):
            break
        spent = (datetime.now(UTC) - started).total_seconds()
        if wait(max(0.0, pause - spent)):
            break
    return summary


def _count_failure(summary: PollSummary, snapshot: Snapshot, error: Exception, pause: float) -> None:
    summary.failed += 1
    summary.last_error = " ".join(str(error).split())
    log.warning(
        "poll %s: round %d failed, next in %.0fs (%d failed so far): %s",
        snapshot.name,
        summary.rounds + 1,
        pause,
        summary.failed,
        summary.last_error,
    )
