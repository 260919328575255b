"""DESIGN.md: every BingX decimal has at most 15 significant digits, so float64 holds it exactly. Proven here
on every number in tests/payloads/, strings ("42214.0") and JSON numbers (42211.1) alike."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests.conftest import PAYLOADS

DECIMAL = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
# Account ids are numeric strings beyond 2^53; they are stored as strings, never as floats (DESIGN.md).
ID_KEYS = frozenset({"userId", "shortUid", "positionId", "tranId", "tradeId"})


def _numbers(value: Any) -> Iterator[Decimal]:
    """Yield every decimal-looking string and every JSON float in a parsed payload."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key not in ID_KEYS:
                yield from _numbers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _numbers(item)
    elif isinstance(value, Decimal):
        yield value
    elif isinstance(value, str) and DECIMAL.fullmatch(value):
        yield Decimal(value)


def _all_numbers() -> list[tuple[str, Decimal]]:
    found = []
    for path in sorted(PAYLOADS.glob("*.json")):
        parsed = json.loads(path.read_text(), parse_float=Decimal)
        found += [(path.name, number) for number in _numbers(parsed)]
    return found


NUMBERS = _all_numbers()


def test_the_payloads_hold_enough_decimals_to_make_the_proof_meaningful() -> None:
    assert len(NUMBERS) >= 150
    assert {name for name, _ in NUMBERS} >= {"ws_depth5.json", "rest_depth.json", "rest_book_ticker.json"}


@pytest.mark.parametrize(("name", "number"), NUMBERS, ids=[f"{n}:{d}" for n, d in NUMBERS])
def test_decimal_round_trips_exactly_through_float64(name: str, number: Decimal) -> None:
    text = str(number)
    assert Decimal(repr(float(text))).normalize() == number.normalize()


def test_the_check_catches_a_decimal_float64_cannot_hold() -> None:
    text = "9007199254740993"  # 2**53 + 1: 16 digits that float64 cannot hold
    assert Decimal(repr(float(text))).normalize() != Decimal(text).normalize()
