"""`--symbols all`: tradable contracts from REST, refreshed so listings start and delistings stop."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from exchange.rest import RestClient
from recorder.runner import Recorder
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
