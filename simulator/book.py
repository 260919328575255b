"""A deterministic order book: levels around the fair price whose sizes change a few at a time per 100 ms.

Each price level keeps its size for its own seeded number of ticks: consecutive ticks differ in a few levels.
"""

from __future__ import annotations

from simulator.prices import Spec, format_units, hash_of, path_ticks

TICK_MS = 100
_HOLE_ODDS = 7  # one price in 7 has no resting orders: books have gaps like real ones


def book(spec: Spec, t_ms: int, levels: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Return (bids descending, asks ascending) as (price, qty) strings at time `t_ms`."""
    tick = t_ms // TICK_MS
    mid = path_ticks(spec, tick * TICK_MS)
    bids = [_level(spec, price, tick) for price in _prices(spec, mid, -1, levels)]
    asks = [_level(spec, price, tick) for price in _prices(spec, mid + 1, 1, levels)]
    return bids, asks


def best(spec: Spec, t_ms: int) -> tuple[tuple[str, str], tuple[str, str]]:
    """Return the best bid and best ask at `t_ms`."""
    bids, asks = book(spec, t_ms, 1)
    return bids[0], asks[0]


# Per (symbol key, price): static traits, and the last rendered level with the epoch it belongs to. A level
# changes only when its epoch does, so caching makes a 1,000-level book cost dict lookups, not hashes.
_TRAITS: dict[tuple[int, int], tuple[bool, int, int]] = {}
_LEVELS: dict[tuple[int, int], tuple[int, tuple[str, str]]] = {}
_CACHE_BOUND = 500_000


def _traits(spec: Spec, price: int) -> tuple[bool, int, int]:
    """Return (has orders, period in ticks, phase) of a price level."""
    key = (spec.key, price)
    traits = _TRAITS.get(key)
    if traits is None:
        if len(_TRAITS) > _CACHE_BOUND:
            _TRAITS.clear()
        period = 20 + hash_of(spec.key, 8, price) % 180
        traits = (hash_of(spec.key, 6, price) % _HOLE_ODDS != 0, period, hash_of(spec.key, 9, price) % period)
        _TRAITS[key] = traits
    return traits


def _prices(spec: Spec, start: int, step: int, levels: int) -> list[int]:
    prices: list[int] = []
    price = start
    while len(prices) < levels and price >= 1:
        if not prices or _traits(spec, price)[0]:
            prices.append(price)  # the best level is always present
        price += step
    return prices


def _level(spec: Spec, price: int, tick: int) -> tuple[str, str]:
    _, period, phase = _traits(spec, price)
    epoch = (tick + phase) // period
    key = (spec.key, price)
    cached = _LEVELS.get(key)
    if cached is not None and cached[0] == epoch:
        return cached[1]
    if len(_LEVELS) > _CACHE_BOUND:
        _LEVELS.clear()
    notional = 50.0 * 4_000.0 ** ((hash_of(spec.key, 7, price, epoch) >> 11) / float(1 << 53))
    units = max(1, round(notional / (price * spec.tick) * 10**spec.quantity_precision))
    level = (format_units(price, spec.price_precision), format_units(units, spec.quantity_precision))
    _LEVELS[key] = (epoch, level)
    return level
