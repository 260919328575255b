"""The dataset registry: every dataset declared once. Pure: pyarrow and the standard library only."""

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


@lru_cache(maxsize=4096)  # hot path: one call per frame, few distinct channels; bounded against junk topics
def dataset_for_channel(channel: str) -> Dataset | None:
    """Find the dataset a topic suffix ("trade", "kline_1m", "depth20@500ms", ...) lands in."""
    for dataset in DATASETS.values():
        if dataset.matches(channel):
            return dataset
    return None


__all__ = ["DATASETS", "Dataset", "dataset_for_channel"]
