"""What the account stream tests count in the views: rows per event id, against the simulator's events."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from schemas.account_stream import event_id, from_account_event
from simulator.account import AccountEvent
from tests.recorder.conftest import query


def rows_per_event(lake: Path) -> Counter[str]:
    """View rows per event id (an ACCOUNT_UPDATE has one row per balance and position it carries)."""
    found: Counter[str] = Counter()
    for table in ("order_updates", "account_config_updates", "account_updates"):
        found.update(r["event_id"] for r in query(lake, f"SELECT event_id FROM {table}"))
    return found


def all_landed(lake: Path, events: list[AccountEvent]) -> bool:
    """Every delivered event is in the views (the lake trails the journal by the lake interval)."""
    rows = rows_per_event(lake) if lake.exists() else Counter()
    return all(rows[event_id(e.message)] >= 1 for e in list(events) if e.delivered_to)


def rows_of(event: AccountEvent) -> int:
    return len(from_account_event(event.message)[1])
