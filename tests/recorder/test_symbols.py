"""`--symbols all`: tradable contracts from REST, refreshed so listings start and delistings stop."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from exchange.rest import RestClient
from recorder.runner import Recorder, tradable_symbols
from schemas import CONTRACTS_PATH
from simulator import Simulator
from tests.recorder.conftest import FAST, options, query, recording, wait_for


def test_all_follows_the_contract_list_as_it_changes(tmp_path: Path) -> None:
    with Simulator(symbols=["BTC-USDT", "ETH-USDT", "SOL-USDT"], seed=6, **FAST) as sim:
        sim.market.pause("SOL-USDT")  # status 25: not tradable, so not subscribed
        opts = options(sim, [], ["markPrice"], refresh_s=0.3)
        opts = replace(opts, symbols=None)
        recorder = Recorder(tmp_path, opts, RestClient(str(sim.rest_url)))

        def acked() -> set[str]:
            return {t for c in recorder.connections for t in c.acked}

        with recording(tmp_path, opts, recorder) as recorder:
            wait_for(lambda: acked() == {"BTC-USDT@markPrice", "ETH-USDT@markPrice"})
            sim.market.pause("BTC-USDT")
            sim.market.pause("SOL-USDT", False)
            wait_for(lambda: acked() == {"ETH-USDT@markPrice", "SOL-USDT@markPrice"})
            wait_for(lambda: sorted(sim.ledger.connections[0].topics) == sorted(acked()))
            wait_for(lambda: sim.ledger.counts.get("SOL-USDT@markPrice", 0) >= 1)
    rows = query(tmp_path / "lake", "SELECT topic FROM stream_events WHERE event = 'subscribed' ORDER BY seq")
    assert [r["topic"] for r in rows] == ["BTC-USDT@markPrice", "ETH-USDT@markPrice", "SOL-USDT@markPrice"]
    symbols = query(tmp_path / "lake", "SELECT DISTINCT symbol FROM mark_prices ORDER BY symbol")
    assert "SOL-USDT" in [r["symbol"] for r in symbols]


class _Contracts:
    """A REST stand-in answering /quote/contracts with the recorded payload, one entry broken."""

    def __init__(self, envelope: dict[str, Any]) -> None:
        self.envelope = envelope

    def get(self, path: str, params: Any) -> Any:
        assert path == CONTRACTS_PATH
        return self.envelope


def test_a_contract_the_converter_refuses_is_left_out_and_the_others_are_recorded() -> None:
    envelope = orjson.loads((Path(__file__).parents[1] / "payloads" / "rest_contracts.json").read_bytes())
    good = [str(contract["symbol"]) for contract in envelope["data"]]
    broken = {**envelope["data"][0], "symbol": 42}  # not a symbol: the contracts converter refuses it
    envelope["data"] = [broken, *envelope["data"]]
    tradable, listed = tradable_symbols(_Contracts(envelope))
    assert listed == set(good)
    expected = sorted(str(c["symbol"]) for c in envelope["data"][1:] if str(c.get("status")) == "1")
    assert tradable == expected and tradable
