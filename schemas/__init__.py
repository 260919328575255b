"""The dataset registry: every dataset declared once. Pure: pyarrow and the standard library only."""

from collections.abc import Iterable
from functools import lru_cache

from schemas.account import BALANCES, COMMISSION_RATES, INCOME, POSITIONS
from schemas.account_stream import ACCOUNT_CONFIG_UPDATES, ACCOUNT_UPDATES, ORDER_UPDATES
from schemas.book_snapshots import BOOK_SNAPSHOTS
from schemas.contracts import CONTRACTS
from schemas.dataset import Dataset
from schemas.depth import BOOK_UPDATES, DEPTH_SNAPSHOTS
from schemas.events import RAW_MESSAGES, STREAM_EVENTS
from schemas.funding import FUNDING_RATES, OPEN_INTEREST, PREMIUM_INDEX
from schemas.klines import KLINES, MARK_KLINES
from schemas.prices import LAST_PRICES, MARK_PRICES
from schemas.tickers import BOOK_TICKERS, TICKERS
from schemas.trades import TRADES

DATASETS: dict[str, Dataset] = {
    dataset.name: dataset
    for dataset in (
        TRADES,
        KLINES,
        MARK_KLINES,
        FUNDING_RATES,
        PREMIUM_INDEX,
        OPEN_INTEREST,
        DEPTH_SNAPSHOTS,
        BOOK_UPDATES,
        BOOK_SNAPSHOTS,
        TICKERS,
        BOOK_TICKERS,
        MARK_PRICES,
        LAST_PRICES,
        CONTRACTS,
        STREAM_EVENTS,
        RAW_MESSAGES,
        INCOME,
        BALANCES,
        POSITIONS,
        COMMISSION_RATES,
        ACCOUNT_UPDATES,
        ORDER_UPDATES,
        ACCOUNT_CONFIG_UPDATES,
    )
}


# Each stream dataset on its default channel (klines at 1m, depth at 20 levels every 500 ms): what the demo
# and the benchmarks record, and what an unknown --channels value is told to choose from.
CHANNELS: tuple[str, ...] = tuple(d.default_channel for d in DATASETS.values() if d.default_channel)
CONTRACTS_PATH: str = CONTRACTS.rest_path or ""  # the symbol list: backfill, poll and the recorder read it


def cli_name(dataset: Dataset) -> str:
    """The name the CLI shows for a dataset: its short alias where it has one, else its name."""
    return dataset.alias or dataset.name


def cli_names(names: Iterable[str]) -> list[str]:
    """Every name the CLI accepts for these datasets: each one's alias, where it has one, then its name."""
    return [each for name in names for each in dict.fromkeys((cli_name(DATASETS[name]), name))]


def named(name: str) -> Dataset:
    """Find a dataset by its name or its CLI alias ("funding_rates" or "funding"); KeyError if neither."""
    for dataset in DATASETS.values():
        if name in (dataset.name, dataset.alias):
            return dataset
    raise KeyError(name)


@lru_cache(maxsize=4096)  # hot path: one call per frame, few distinct channels; bounded against junk topics
def dataset_for_channel(channel: str) -> Dataset | None:
    """Find the dataset a topic suffix ("trade", "kline_1m", "depth20@500ms", ...) lands in."""
    for dataset in DATASETS.values():
        if dataset.matches(channel):
            return dataset
    return None


__all__ = [
    "CHANNELS",
    "CONTRACTS_PATH",
    "DATASETS",
    "Dataset",
    "cli_name",
    "cli_names",
    "dataset_for_channel",
    "named",
]
