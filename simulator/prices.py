"""Seeded, stateless price paths and contract specs: every value is an O(1) function of (seed, symbol, time).

Pure arithmetic: no threads, no sockets, no caches beyond per-symbol constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

MASK = (1 << 64) - 1
SECOND_MS = 1000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000

KNOWN_BASES = {"BTC": 90_000.0, "ETH": 3_000.0, "SOL": 180.0, "BNB": 600.0, "XRP": 0.6, "DOGE": 0.15}

# (period in seconds, relative amplitude) of the sine terms of the log price; the fast ones make trades move.
_TRADE_WAVES = (
    (86_400 * 3.7, 0.03),
    (86_400, 0.012),
    (14_400, 0.006),
    (2_220, 0.003),
    (420, 0.0015),
    (90, 6e-4),
)
_MARK_WAVES = _TRADE_WAVES[:4]


def mix(value: int) -> int:
    """Return splitmix64's finaliser of `value`: a cheap, well-spread 64-bit hash."""
    value = (value + 0x9E3779B97F4A7C15) & MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & MASK
    return value ^ (value >> 31)


def hash_of(*parts: int) -> int:
    """Hash a tuple of ints into 64 bits (order matters)."""
    value = 0x1234_5678
    for part in parts:
        value = mix(value ^ (part & MASK))
    return value


def unit(*parts: int) -> float:
    """A uniform float in [0, 1) derived from the parts."""
    return (hash_of(*parts) >> 11) / float(1 << 53)


def text_hash(text: str) -> int:
    """Hash a string deterministically (Python's str hash is salted per process)."""
    return hash_of(*text.encode())


def format_units(units: int, decimals: int) -> str:
    """Render an integer count of 10^-decimals as a fixed-point decimal string ("1234", 1 -> "123.4")."""
    if decimals == 0:
        return str(units)
    sign = "-" if units < 0 else ""
    digits = str(abs(units)).rjust(decimals + 1, "0")
    return f"{sign}{digits[:-decimals]}.{digits[-decimals:]}"


@dataclass(frozen=True)
class Spec:
    """Per-contract constants derived from (seed, symbol)."""

    symbol: str
    key: int  # hash of (seed, symbol): the root of every other draw for this symbol
    index: int  # position in the market's symbol list (contractId)
    base_price: float
    price_precision: int
    quantity_precision: int
    funding_interval_hours: int
    phases: tuple[float, ...]
    trade_waves: tuple[tuple[float, float, float], ...]  # (radians per second, amplitude, phase)
    mark_waves: tuple[tuple[float, float, float], ...]

    @property
    def tick(self) -> float:
        return 10.0**-self.price_precision


def spec_for(seed: int, symbol: str, index: int) -> Spec:
    """Derive a contract's constants: base price, precisions, funding interval, wave phases."""
    key = hash_of(seed, text_hash(symbol))
    asset = symbol.split("-")[0]
    base = KNOWN_BASES.get(asset) or 10.0 ** (-2.0 + 5.0 * unit(key, 1))
    magnitude = math.floor(math.log10(base))
    phases = tuple(2 * math.pi * unit(key, 10 + i) for i in range(len(_TRADE_WAVES)))
    waves = tuple(
        (2 * math.pi / period, amp, phase) for (period, amp), phase in zip(_TRADE_WAVES, phases, strict=True)
    )
    return Spec(
        symbol=symbol,
        key=key,
        index=index,
        base_price=base,
        price_precision=max(0, min(10, 5 - magnitude)),
        quantity_precision=max(0, min(4, magnitude)),
        funding_interval_hours=(1, 2, 4, 8)[hash_of(key, 2) % 4] if asset not in ("BTC", "ETH") else 8,
        phases=phases,
        trade_waves=waves,
        mark_waves=waves[: len(_MARK_WAVES)],
    )


def _log_offset(seconds: float, waves: tuple[tuple[float, float, float], ...]) -> float:
    total = 0.0
    for omega, amplitude, phase in waves:
        total += amplitude * math.sin(omega * seconds + phase)
    return total


def path_ticks(spec: Spec, t_ms: int) -> int:
    """Return the fair trade price at `t_ms` in ticks (units of 10^-pricePrecision); always >= 1."""
    seconds = t_ms / 1000.0
    price = spec.base_price * math.exp(_log_offset(seconds, spec.trade_waves))
    return max(1, round(price / spec.tick))


def mark_ticks(spec: Spec, t_ms: int) -> int:
    """Return the mark price in ticks: a smoother path that changes once per second."""
    second = t_ms // SECOND_MS
    price = spec.base_price * math.exp(_log_offset(float(second), spec.mark_waves))
    jitter = (hash_of(spec.key, 3, second) % 5) - 2  # a few ticks of noise so consecutive seconds differ
    return max(1, round(price / spec.tick) + jitter)


def index_ticks(spec: Spec, t_ms: int) -> int:
    """Return the index price in ticks: the mark path plus a small slowly varying basis."""
    second = t_ms // SECOND_MS
    basis = 1.0 + 3e-4 * math.sin(2 * math.pi * second / 3_600 + spec.phases[0])
    return max(1, round(mark_ticks(spec, t_ms) * basis))


def funding_rate(spec: Spec, settle_ms: int) -> str:
    """Return the settled funding rate at `settle_ms` as an 8-decimal string, e.g. "0.00010000"."""
    units = 10_000 + (hash_of(spec.key, 4, settle_ms) % 40_001) - 15_000  # around 0.0001, sometimes negative
    return format_units(units, 8)
