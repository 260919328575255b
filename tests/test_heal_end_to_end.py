"""The completeness proof end to end: outages injected into a real recording, healed from REST, classified.

3 symbols × trade, kline_1m, depth20@500ms, incrDepth against the simulator with BingX's published REST
budgets enforced. Every socket is dropped and refused for 20 s; later the recorder is SIGKILLed and
restarted 30 s after. `heal` (while a `backfill` runs on the same host) must leave the trades and klines
views equal to the simulator's truth exactly once, with 0 throttled answers, and `coverage --format json`
must list the book windows as unhealable within ±1 s of the ledger and the trade and kline windows healed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from simulator import Simulator
from tests.conftest import as_ms
from tests.recorder.conftest import query, wait_for

ROOT = Path(__file__).parents[1]
SYMBOLS = ["BTC-USDT", "ETH-USDT", "SOL-USDT"]
CHANNELS = ["trade", "kline_1m", "depth20@500ms", "incrDepth"]
TOPICS = [f"{s}@{c}" for s in SYMBOLS for c in CHANNELS]
OTHER = "DOGE-USDT"  # backfilled from REST while the recording is healed: the two share one budget


def _cli(sim: Simulator, data_dir: Path, *args: str) -> list[str]:
    argv = [sys.executable, "-m", "cli", "--data-dir", str(data_dir), "--ws-url", sim.ws_url]
    return [*argv, "--rest-url", str(sim.rest_url), "--log-level", "WARNING", *args]


def _start(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)


def _record(sim: Simulator, data_dir: Path, *extra: str) -> subprocess.Popen[bytes]:
    args = ["record", "--symbols", ",".join(SYMBOLS), "--channels", ",".join(CHANNELS)]
    return _start(_cli(sim, data_dir, *args, "--no-heal", "--lake-interval", "2", *extra))


def _flowing_after(sim: Simulator, ms: int) -> bool:
    return all(any(f.sent_ms > ms for f in sim.ledger.frames(t)[-3:]) for t in TOPICS)


@pytest.mark.slow
def test_outages_are_healed_to_the_exact_truth_and_every_window_is_classified(tmp_path: Path) -> None:
    with Simulator(symbols=[*SYMBOLS, OTHER], seed=13, trades_per_second=8.0, bingx_budgets=True) as sim:
        first = _record(sim, tmp_path)
        try:
            wait_for(lambda: all(sim.ledger.counts.get(t, 0) >= 3 for t in TOPICS), 30)
            time.sleep(3)
            outage_ms = sim.ws.clock()
            sim.faults.outage(20)
            wait_for(lambda: _flowing_after(sim, outage_ms + 20_000), 60)
            time.sleep(3)
            killed_ms = sim.ws.clock()
            first.send_signal(signal.SIGKILL)
        finally:
            first.wait(10)
        time.sleep(30)  # the scenario: restarted 30 s after the kill
        restarted_ms = sim.ws.clock()
        second = _record(sim, tmp_path, "--duration", "14")
        assert second.wait(60) == 0
        frames = {t: [f.sent_ms for f in sim.ledger.frames(t)] for t in TOPICS}

        since = str(sim.ws.clock() - 3_600_000)
        backfill = _start(_cli(sim, tmp_path, "backfill", "trades", "--symbols", OTHER, "--since", since))
        try:
            healed = CliRunner().invoke(
                main, [*_at(sim, tmp_path), "heal", "--datasets", "trades,klines"], catch_exceptions=False
            )
            assert healed.exit_code == 0 and "skipped" not in healed.output, healed.output
            assert backfill.poll() is None, "the backfill ended before the heal: they shared no budget"
            assert backfill.wait(180) == 0
        finally:
            backfill.kill()
            backfill.wait(10)
        again = CliRunner().invoke(main, [*_at(sim, tmp_path), "heal", "--datasets", "trades,klines"])
        assert again.exit_code == 0 and ", 0 rows written" in again.output, again.output
        assert sim.rest_ledger.throttled == 0
        now_ms = sim.ws.clock()
        lake = tmp_path / "lake"
        twins = sum(_assert_trades_are_the_truth(sim, lake, symbol) for symbol in SYMBOLS)
        assert twins, "no identical-looking fills in the span: the test would prove less than it says"
        for symbol in SYMBOLS:
            _assert_bars_are_the_truth(sim, lake, symbol, now_ms, frames[f"{symbol}@kline_1m"][-1])

    report = CliRunner().invoke(main, ["--data-dir", str(tmp_path), "coverage", "--format", "json"])
    assert report.exit_code == 0, report.output
    gaps = json.loads(report.output)["gaps"]
    outage = _around(frames, outage_ms, outage_ms + 20_000)
    restart = _around(frames, killed_ms, restarted_ms)
    for topic in TOPICS:
        symbol, _, channel = topic.partition("@")
        mine = [g for g in gaps if g["symbol"] == symbol and g["channel"] == channel]
        expected = "unhealable" if "epth" in channel else "healed"
        assert [g["class"] for g in mine] == [expected, expected], (topic, mine)
        for gap, (last, first_after) in zip(mine, (outage[topic], restart[topic]), strict=True):
            assert abs(_ms(gap["start"]) - last) <= 1000, (topic, gap, last)
            assert abs(_ms(gap["end"]) - first_after) <= 1000, (topic, gap, first_after)
            if channel == "incrDepth":  # updates count again from the next `all` snapshot: marked
                assert gap["resync_at"] is not None and _ms(gap["resync_at"]) >= _ms(gap["end"]), gap


def _at(sim: Simulator, data_dir: Path) -> list[str]:
    return ["--data-dir", str(data_dir), "--rest-url", str(sim.rest_url)]


def _around(frames: dict[str, list[int]], low: int, high: int) -> dict[str, tuple[int, int]]:
    """Per topic, the last frame sent before `low` and the first one sent after `high`."""
    return {
        t: (max(s for s in sent if s <= low), min(s for s in sent if s > high)) for t, sent in frames.items()
    }


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _assert_trades_are_the_truth(sim: Simulator, lake: Path, symbol: str) -> int:
    """Check the view against the market's trades over the recorded span; return identical-looking fills."""
    rows = query(lake, f"SELECT * FROM trades WHERE symbol = '{symbol}' AND source = 'stream'")
    low, high = min(as_ms(r["trade_time"]) for r in rows) + 1, max(as_ms(r["trade_time"]) for r in rows)
    landed = query(
        lake,
        f"SELECT trade_time, price, qty, is_buyer_maker FROM trades WHERE symbol = '{symbol}' "
        f"AND epoch_ms(trade_time) BETWEEN {low} AND {high - 1}",
    )
    truth = sim.market.trades(symbol, low, high)
    key = Counter((t.time_ms, float(t.price), float(t.qty), t.is_buyer_maker) for t in truth)
    got = Counter((as_ms(r["trade_time"]), r["price"], r["qty"], r["is_buyer_maker"]) for r in landed)
    assert got == key, (symbol, sum(got.values()), sum(key.values()))
    return sum(1 for n in key.values() if n > 1)


def _assert_bars_are_the_truth(sim: Simulator, lake: Path, symbol: str, now_ms: int, closed_ms: int) -> None:
    """Check every bar closed before the recording ended against the market's bars."""
    rows = query(
        lake,
        f"SELECT open_time, open, high, low, close, volume, source FROM klines WHERE symbol = '{symbol}' "
        f"AND interval = '1m' AND is_final AND epoch_ms(open_time) + 60000 <= {closed_ms} ORDER BY open_time",
    )
    assert rows, symbol
    opens = [as_ms(r["open_time"]) for r in rows]
    truth = sim.market.klines(symbol, "1m", opens[0], opens[-1] + 1, as_of_ms=now_ms)
    want = [(b.open_ms, *(float(v) for v in (b.open, b.high, b.low, b.close, b.volume))) for b in truth]
    got = [(as_ms(r["open_time"]), r["open"], r["high"], r["low"], r["close"], r["volume"]) for r in rows]
    assert got == want, (symbol, [r["source"] for r in rows])
