"""REST snapshots (contracts, premium index, open interest, tickers, depth, book tickers, last prices) into
their datasets with source='poll', once or every N seconds until stopped."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from backfill.errors import PagingError
from exchange.rest import RestClient
from schemas.dataset import ConversionError, Row
from storage.lake import Lake

log = logging.getLogger("poll")


@dataclass(frozen=True)
class Snapshot:
    """One pollable endpoint: CLI name, dataset, path, and whether it needs one request per symbol."""

    name: str
    dataset: str
    path: str
    per_symbol: bool  # the endpoint requires `symbol`; otherwise one call returns every contract
    params: tuple[tuple[str, Any], ...] = ()


SNAPSHOTS = {
    snapshot.name: snapshot
    for snapshot in (
        Snapshot("contracts", "contracts", "/openApi/swap/v2/quote/contracts", False),
        Snapshot("premium-index", "premium_index", "/openApi/swap/v2/quote/premiumIndex", False),
        Snapshot("open-interest", "open_interest", "/openApi/swap/v2/quote/openInterest", True),
        Snapshot("tickers", "tickers", "/openApi/swap/v2/quote/ticker", False),
        Snapshot("depth", "depth_snapshots", "/openApi/swap/v2/quote/depth", True, (("limit", 20),)),
        Snapshot("book-tickers", "book_tickers", "/openApi/swap/v2/quote/bookTicker", True),
        Snapshot("prices", "last_prices", "/openApi/swap/v1/ticker/price", False),
    )
}


@dataclass
class PollSummary:
    name: str
    rounds: int = 0
    rows: int = 0
    files: int = 0

    def line(self) -> str:
        return f"poll {self.name}: {self.rounds} rounds, {self.rows} rows written in {self.files} files"


def poll_once(
    client: RestClient, lake: Lake, snapshot: Snapshot, symbols: list[str] | None
) -> tuple[int, int]:
    """Take one snapshot of every requested symbol (None: all); write it; return (rows, files)."""
    from schemas import DATASETS

    dataset = DATASETS[snapshot.dataset]
    assert dataset.from_rest is not None
    if snapshot.per_symbol and symbols is None:
        raise ValueError(f"poll {snapshot.name} needs --symbols (the endpoint takes one symbol per call)")
    queries = [{"symbol": s} for s in symbols] if snapshot.per_symbol and symbols else [{}]
    rows: list[Row] = []
    for query in queries:
        query.update(snapshot.params)
        envelope = client.get(snapshot.path, query)
        received_at = datetime.now(UTC)
        try:
            converted = dataset.from_rest(envelope, query)
        except ConversionError as error:
            lake.reject(dataset.name, str(envelope), str(error), "poll", received_at)
            raise PagingError(f"{snapshot.path} {query}: {error} (kept in _rejects/{dataset.name})") from None
        if symbols is not None and not snapshot.per_symbol:
            converted = [row for row in converted if row["symbol"] in symbols]
        for row in converted:
            row["received_at"], row["source"] = received_at, "poll"
        rows += converted
    return len(rows), len(lake.write(dataset, rows, combined=True))  # one file per round, every symbol


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
) -> PollSummary:
    """Poll once (every_s None) or every `every_s` seconds until `count` rounds or `stop` is set."""
    stop = stop or threading.Event()
    summary = PollSummary(snapshot.name)
    rounds = 1 if every_s is None else count
    while rounds is None or summary.rounds < rounds:
        started = datetime.now(UTC)
        rows, files = poll_once(client, lake, snapshot, symbols)
        summary.rounds, summary.rows, summary.files = (
            summary.rounds + 1,
            summary.rows + rows,
            summary.files + files,
        )
        if on_round is not None:
            on_round(rows, files)
        log.info("poll %s: %d rows", snapshot.name, rows)
        if every_s is None or (rounds is not None and summary.rounds >= rounds):
            break
        spent = (datetime.now(UTC) - started).total_seconds()
        if stop.wait(max(0.0, every_s - spent)):
            break
    return summary
