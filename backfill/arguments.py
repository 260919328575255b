"""Parse the backfill and poll command-line values; every error is a one-line ValueError saying what to do."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from schemas.dataset import INTERVALS

_SYMBOL = re.compile(r"[0-9A-Z]+-(USDT|USDC)")
# 2010-01-01 UTC: every BingX contract is younger, so an earlier time is a typo or epoch *seconds*
EARLIEST_MS = 1_262_304_000_000


def parse_time(text: str | None, option: str) -> int | None:
    """Read YYYY-MM-DD (UTC midnight), YYYY-MM-DDTHH:MM[:SS] (UTC) or epoch milliseconds."""
    if text is None:
        return None
    value = text.strip()
    if value.isdigit():
        ms = int(value)
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{option} {text!r}: expected YYYY-MM-DD or epoch milliseconds") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        ms = int(moment.timestamp() * 1000)
    if ms < EARLIEST_MS:
        raise ValueError(
            f"{option} {text!r} is before 2010-01-01, older than any BingX contract: "
            "expected YYYY-MM-DD or epoch milliseconds (not seconds)"
        )
    return ms


def parse_window(since: str | None, until: str | None) -> tuple[int | None, int | None]:
    """Read --since/--until and check their order."""
    since_ms, until_ms = parse_time(since, "--since"), parse_time(until, "--until")
    if since_ms is not None and until_ms is not None and since_ms >= until_ms:
        raise ValueError(f"--since {since} is not before --until {until}")
    return since_ms, until_ms


def parse_symbols(text: str | None) -> list[str] | None:
    """Read "BTC-USDT,ETH-USDT" (None or "all" means every contract); refuse malformed names."""
    if text is None or text.strip().lower() == "all":
        return None
    symbols = [part.strip() for part in text.split(",") if part.strip()]
    bad = [symbol for symbol in symbols if not _SYMBOL.fullmatch(symbol)]
    if bad or not symbols:
        raise ValueError(f"--symbols {text!r}: expected names like BTC-USDT,ETH-USDT or 'all'")
    return list(dict.fromkeys(symbols))


def parse_intervals(text: str | None, needs_interval: bool, series: str) -> tuple[str, ...]:
    """Read "1m,1h"; default 1m for bar series; refuse one for series without intervals."""
    if not needs_interval:
        if text is not None:
            raise ValueError(f"--interval does not apply to {series} (only klines and mark-klines)")
        return ()
    parts = [part.strip() for part in (text or "1m").split(",") if part.strip()]
    unknown = [part for part in parts if part not in INTERVALS]
    if unknown or not parts:
        raise ValueError(
            f"unknown interval {', '.join(unknown) or repr(text)}: choose from {', '.join(INTERVALS)}"
        )
    return tuple(dict.fromkeys(parts))
