"""`record` heals closed outage windows by itself and keeps every contracts refresh it makes."""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange.rest import RestClient
from recorder.runner import Recorder
from simulator import Simulator
from tests.recorder.conftest import FAST, options, query, recording, wait_for

SYMBOL = "BTC-USDT"


@pytest.mark.slow
def test_record_heals_a_dropped_window_from_rest_and_keeps_the_contracts(tmp_path: Path) -> None:
    with Simulator(symbols=[SYMBOL], seed=8, trades_per_second=5.0, **FAST) as sim:
        opts = options(
            sim, [SYMBOL], ["trade"], heal_rest_url=sim.rest_url, heal_every_s=1.0, lake_interval_s=1.0
        )
        with RestClient(str(sim.rest_url)) as rest, recording(tmp_path, opts, Recorder(tmp_path, opts, rest)):
            wait_for(lambda: sim.ledger.counts.get(f"{SYMBOL}@trade", 0) >= 3, 20)
            sim.faults.drop()
            healed = "SELECT count(*) AS n FROM trades WHERE source = 'backfill'"
            wait_for(lambda: query(tmp_path / "lake", healed)[0]["n"] > 0, 60)
    contracts = query(tmp_path / "lake", "SELECT symbol, status, source FROM contracts")
    assert {"symbol": SYMBOL, "status": 1, "source": "poll"} in contracts
    gaps = query(tmp_path / "lake", "SELECT channel, cause FROM stream_gaps")
    assert {"channel": "trade", "cause": "disconnect"} in gaps


@pytest.mark.slow
def test_a_shard_heals_only_the_outages_of_its_own_symbols(tmp_path: Path) -> None:
    from recorder.healing import AutoHeal

    with Simulator(symbols=[SYMBOL], seed=9, trades_per_second=5.0, **FAST) as sim:
        opts = options(sim, [SYMBOL], ["trade"], lake_interval_s=1.0)
        with recording(tmp_path, opts) as recorder:
            wait_for(lambda: sim.ledger.counts.get(f"{SYMBOL}@trade", 0) >= 3, 20)
            sim.faults.drop()
            wait_for(
                lambda: len(recorder.connections[0].acked) > 0 and sim.ledger.counts[f"{SYMBOL}@trade"] > 8,
                20,
            )
            sent = sim.ledger.counts[f"{SYMBOL}@trade"]
            wait_for(lambda: sim.ledger.counts[f"{SYMBOL}@trade"] > sent + 3, 20)
        assert query(tmp_path / "lake", "SELECT count(*) AS n FROM stream_gaps")[0]["n"] > 0
        other = AutoHeal(tmp_path, str(sim.rest_url), owns=lambda symbol: symbol != SYMBOL)
        requests = len(sim.rest_ledger.snapshot())
        assert other.heal_once() == 0 and len(sim.rest_ledger.snapshot()) == requests  # not its symbol
        owner = AutoHeal(tmp_path, str(sim.rest_url), owns=lambda symbol: symbol == SYMBOL)
        assert owner.heal_once() > 0
