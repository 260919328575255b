"""Which symbols exist and when they were listed (/quote/contracts through its converter); unknown ones are
refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from backfill.contracts import listings, resolve
from backfill.errors import UnknownSymbol
from exchange.rest import RestClient
from tests.backfill.conftest import SYMBOLS, no_sleep

KNOWN = {"ETH-USDT": 1_600_000_000_000, "BTC-USDT": None, "SOL-USDT": 1_650_000_000_000}


def test_listings_give_every_contract_its_listing_time(sim: Any) -> None:
    with RestClient(sim.rest_url, sleep=no_sleep) as client:
        assert listings(client) == dict.fromkeys(SYMBOLS, sim.market.listed_ms)
    assert isinstance(sim.market.listed_ms, int)


def test_all_is_every_known_symbol_sorted() -> None:
    assert resolve(None, KNOWN) == ["BTC-USDT", "ETH-USDT", "SOL-USDT"]


def test_known_symbols_are_kept_in_the_order_asked() -> None:
    assert resolve(["SOL-USDT", "BTC-USDT"], KNOWN) == ["SOL-USDT", "BTC-USDT"]


def test_unknown_symbols_are_named_in_one_line() -> None:
    with pytest.raises(UnknownSymbol) as raised:
        resolve(["BTC-USDT", "DOGE-USDT", "XRP-USDC"], KNOWN)
    assert str(raised.value) == (
        "unknown symbol(s) DOGE-USDT, XRP-USDC: not in /quote/contracts "
        "(symbols look like BTC-USDT; 3 contracts listed)"
    )


def test_an_unknown_symbol_is_a_value_error_the_cli_shows_as_one_line() -> None:
    with pytest.raises(ValueError, match=r"^unknown symbol\(s\) ADA-USDT: "):
        resolve(["ADA-USDT"], {})


def test_a_contract_whose_launch_time_is_0_has_no_listing_time(sim: Any) -> None:
    from schemas import CONTRACTS_PATH

    sim.rest.faults.mangle_next(1, field="launchTime", value=0, index=0, path=CONTRACTS_PATH)
    try:
        with RestClient(sim.rest_url, sleep=no_sleep) as client:
            listed = listings(client)
    finally:
        sim.rest.faults.clear()
    first, *others = listed
    assert sorted(listed) == sorted(SYMBOLS)
    assert listed == {first: None, **dict.fromkeys(others, sim.market.listed_ms)}
