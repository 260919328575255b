"""Which symbols exist and when they were listed, from /quote/contracts through its converter."""

from __future__ import annotations

from typing import Any

from backfill.errors import UnknownSymbol
from exchange.rest import RestClient


def listings(client: RestClient) -> dict[str, int | None]:
    """Return {symbol: listing time in ms (None when BingX gives none)} for every contract."""
    from schemas import CONTRACTS_PATH, DATASETS

    contracts = DATASETS["contracts"]
    assert contracts.from_rest is not None
    rows = contracts.from_rest(client.get(CONTRACTS_PATH, {}), {})
    return {row["symbol"]: _ms(row.get("launch_time")) for row in rows}


def _ms(value: Any) -> int | None:
    return int(value) if isinstance(value, int) and value > 0 else None  # epoch ms; 0 or none: unknown


def resolve(requested: list[str] | None, known: dict[str, int | None]) -> list[str]:
    """Expand None ("all") to every known symbol; refuse unknown ones by name (UnknownSymbol, one line)."""
    if requested is None:
        return sorted(known)
    unknown = [symbol for symbol in requested if symbol not in known]
    if unknown:
        raise UnknownSymbol(
            f"unknown symbol(s) {', '.join(unknown)}: not in /quote/contracts "
            f"(symbols look like BTC-USDT; {len(known)} contracts listed)"
        )
    return requested
