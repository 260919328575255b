"""`run --config` end to end against the simulator: a recorder, two polls, a backfill schedule, healing and
compaction as real child processes. The recorder is SIGKILLed and must come back (a new pid in
state/service.json) with every trade frame sent before the kill in the views once; a broken file on SIGHUP is
refused, a good one restarts the recorder on the new symbols; SIGTERM ends it all with exit 0 within 5 s."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas import DATASETS
from service.state import STATE_FILE, read_state
from simulator import Simulator
from tests.conftest import as_ms
from tests.recorder.conftest import query, wait_for
from tests.service.test_metrics import health, per_channel, scrape, until

ROOT = Path(__file__).parents[2]
SYMBOLS = ["BTC-USDT", "ETH-USDT", "SOL-USDT"]
IN_FLIGHT_MS = 1500  # frames sent this close to a kill or a stop may still be in a socket buffer


def _config(sim: Simulator, data_dir: Path, symbols: list[str], metrics: str) -> str:
    return f"""
data_dir = "{data_dir}"
metrics = "{metrics}"
rest_url = "{sim.rest_url}"
ws_url = "{sim.ws_url}"
log_format = "json"
stop_timeout = "3s"

[record]
symbols = {json.dumps(symbols)}
channels = ["trade", "kline_1m"]
lake_interval = 1.0
silence_timeout = 6.0
converter = "thread"

[[poll]]
name = "premium-index"
every = "3s"

[[poll]]
name = "open-interest"
every = "5s"
symbols = ["BTC-USDT"]

[[backfill]]
dataset = "klines"
every = "20s"
lookback = "2d"          # reaches into closed days: compaction has something to do

[heal]
every = "30s"
lookback = "1h"

[compact]
every = "15s"
older_than = "0s"
grace = "0s"
"""


def _state(data_dir: Path) -> dict[str, Any]:
    return read_state(data_dir / STATE_FILE) or {"children": {}}


def _child(data_dir: Path, name: str) -> dict[str, Any]:
    return _state(data_dir)["children"].get(name, {})  # type: ignore[no-any-return]


def _has_trades(lake: Path) -> bool:
    try:
        return bool(query(lake, "SELECT count(*) AS n FROM trades")[0]["n"])
    except Exception:  # no trades folder yet: no view
        return False


@pytest.mark.slow
def test_run_supervises_every_part_survives_a_kill_reloads_symbols_and_stops_in_5_s(tmp_path: Path) -> None:
    data_dir, config = tmp_path / "data", tmp_path / "bingx.toml"
    log_path = tmp_path / "run.log"
    with Simulator(symbols=SYMBOLS, seed=16, trades_per_second=5.0, ping_interval_s=1.0) as sim:
        with socket.socket() as free:
            free.bind(("127.0.0.1", 0))
            metrics = f"127.0.0.1:{free.getsockname()[1]}"
        config.write_text(_config(sim, data_dir, SYMBOLS, metrics))
        with log_path.open("wb") as log:
            service = subprocess.Popen(
                [sys.executable, "-m", "cli", "run", "--config", str(config)],
                env={**os.environ, "PYTHONPATH": str(ROOT)},
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            signals = _exercise(sim, service, data_dir, config, log_path, f"http://{metrics}")
        finally:
            if service.poll() is None:
                service.kill()
                service.wait(10)
        frames = {f"{s}@trade": sim.ledger.frames(f"{s}@trade") for s in SYMBOLS}
        connections = sim.ledger.connections
        assert not _processes_of(data_dir), "a child outlived the service"
        _assert_trades_landed_once(sim, data_dir / "lake", frames, connections, signals)
    lines = log_path.read_text().splitlines()
    assert lines and all(isinstance(json.loads(line), dict) for line in lines), (
        "every line is one JSON object"
    )


def _exercise(
    sim: Simulator, service: subprocess.Popen[bytes], data_dir: Path, config: Path, log_path: Path, url: str
) -> list[int]:
    """Kill, reload and stop the service; return the market times (ms) of the signals that cut sockets."""
    lake = data_dir / "lake"
    topics = [f"{s}@{c}" for s in SYMBOLS for c in ("trade", "kline_1m")]
    wait_for(lambda: all(sim.ledger.counts.get(t, 0) >= 3 for t in topics) and _has_trades(lake), 60)
    first = _child(data_dir, "record")["pid"]
    # The service's one metrics server sums its children's: the recorder's frames, the polls' requests.
    until(
        lambda: per_channel(scrape(url).get("bingx_recorder_frames_received_total", {})).get("trade"),
        20,
        "frames",
    )
    before = per_channel(scrape(url)["bingx_recorder_frames_received_total"])["trade"]
    assert until(lambda: health(url)[0] == 200, 20, "/health 200 while every topic flows")
    killed_ms = sim.ws.clock()
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: _child(data_dir, "record").get("pid") not in (None, first), 30)
    record = _child(data_dir, "record")
    assert record["restarts"] == 1 and record["failures"] == 1 and record["last_exit"]["code"] == -9, record
    second = record["pid"]
    wait_for(lambda: _recording_for(sim, SYMBOLS, 2, 3000), 30)
    frames = lambda: per_channel(scrape(url)["bingx_recorder_frames_received_total"])["trade"]  # noqa: E731
    until(
        lambda: frames() > before, 20, "a dead child's counts stay in the sum and the new one's add to them"
    )

    good = config.read_text()
    config.write_text(good.replace("silence_timeout = 6.0", "silence_timeout = 1.0", 1))
    service.send_signal(signal.SIGHUP)
    wait_for(lambda: "reload refused" in log_path.read_text(), 20)
    assert _child(data_dir, "record")["pid"] == second, "a bad file on SIGHUP must leave the recorder alone"

    config.write_text(good.replace(json.dumps(SYMBOLS), json.dumps(SYMBOLS[:2]), 1))
    reloaded_ms = sim.ws.clock()
    service.send_signal(signal.SIGHUP)
    wait_for(lambda: _child(data_dir, "record").get("pid") not in (None, second), 30)
    wanted = sorted(f"{s}@{c}" for s in SYMBOLS[:2] for c in ("trade", "kline_1m"))
    wait_for(lambda: sorted(sim.ledger.connections[-1].topics) == wanted, 30)
    assert _child(data_dir, "record")["restarts"] == 2 and _child(data_dir, "record")["failures"] == 1

    def schedules_ran() -> bool:
        backfill, heal = _child(data_dir, "backfill klines"), _child(data_dir, "heal")
        return (
            re.search(r"compact: compacted [1-9]", log_path.read_text()) is not None
            and backfill.get("starts", 0) >= 2
            and (backfill.get("last_exit") or {}).get("code") == 0
            and (heal.get("last_exit") or {}).get("code") == 0
        )

    wait_for(schedules_ran, 60)
    wait_for(lambda: _recording_for(sim, SYMBOLS[:2], 3, 3000), 30)
    assert all(_child(data_dir, f"poll {n}").get("restarts") == 0 for n in ("premium-index", "open-interest"))
    stopped_ms = sim.ws.clock()
    started = time.monotonic()
    service.send_signal(signal.SIGTERM)
    assert service.wait(10) == 0
    assert time.monotonic() - started < 5.0, "SIGTERM must end the service within 5 s"
    assert _state(data_dir)["stopped"] is True
    polled = query(
        lake, "SELECT (SELECT count(*) FROM premium_index) AS p, (SELECT count(*) FROM open_interest) AS o"
    )
    assert polled[0]["p"] > 0 and polled[0]["o"] > 0, polled
    _assert_compacted_bars_are_the_truth(sim, lake)
    return [killed_ms, reloaded_ms, stopped_ms]


def _assert_compacted_bars_are_the_truth(sim: Simulator, lake: Path) -> None:
    """Yesterday's 1m bars, backfilled and compacted while the service ran, are the market's, once each."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    low, high = int((today - timedelta(days=1)).timestamp() * 1000), int(today.timestamp() * 1000)
    compacted = [p for p in lake.glob("klines/**/*.parquet") if p.name.startswith("c")]
    assert compacted, "no compacted klines file"
    for symbol in SYMBOLS:
        rows = query(
            lake,
            f"SELECT open_time, open, high, low, close, volume FROM klines WHERE symbol = '{symbol}' "
            f"AND interval = '1m' AND epoch_ms(open_time) >= {low} AND epoch_ms(open_time) < {high} "
            "ORDER BY open_time",
        )
        truth = sim.market.klines(symbol, "1m", low, high, as_of_ms=high)
        want = [(b.open_ms, *(float(v) for v in (b.open, b.high, b.low, b.close, b.volume))) for b in truth]
        got = [(as_ms(r["open_time"]), r["open"], r["high"], r["low"], r["close"], r["volume"]) for r in rows]
        assert len(got) == 1440 and got == want, (symbol, len(got), len(want))


def _recording_for(sim: Simulator, symbols: list[str], connections: int, ms: int) -> bool:
    """The `connections`-th socket gets trades of every symbol, the last one `ms` after it opened."""
    opened = sim.ledger.connections
    if len(opened) < connections or not opened[-1].topics:
        return False
    newest = opened[-1]
    sent = [
        [f.sent_ms for f in sim.ledger.frames(f"{s}@trade")[-5:] if newest.id in f.connections]
        for s in symbols
    ]
    return all(sent) and max(max(times) for times in sent) > newest.connected_ms + ms


def _processes_of(data_dir: Path) -> list[str]:
    """Every live process whose command line names the data dir: the service's children and theirs."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(str(data_dir).encode() in arg for arg in argv):
            found.append(b" ".join(argv).decode(errors="replace"))
    return found


def _assert_trades_landed_once(
    sim: Simulator, lake: Path, frames: dict[str, list[Any]], connections: list[Any], signals: list[int]
) -> None:
    """Every trade frame sent to a recorder well before its socket was cut is in the views exactly once, and
    the views hold no trade the market did not make (healing may add the outage's trades from REST)."""
    cutoff = {
        c.id: min([*(t for t in signals if t >= c.connected_ms), c.closed_ms or signals[-1]])
        for c in connections
    }
    safe = [
        f
        for sent in frames.values()
        for f in sent
        if any(f.sent_ms < cutoff[c] - IN_FLIGHT_MS for c in f.connections)
    ]
    every = [f for sent in frames.values() for f in sent]
    assert len(safe) > 20 and len({c for f in safe for c in f.connections}) >= 3, (
        "too little recorded to prove it"
    )
    raw = Counter(r["text"] for r in query(lake, "SELECT text FROM raw_messages"))
    assert all(raw[f.text] == 1 for f in safe), "a raw frame was lost or doubled"
    landed = query(lake, "SELECT * FROM trades")
    trades, must = Counter(_keys(landed)), Counter(_keys(_rows(safe)))
    low, high = min(as_ms(r["trade_time"]) for r in landed), max(as_ms(r["trade_time"]) for r in landed)
    made = [(s, t) for s in SYMBOLS for t in sim.market.trades(s, low, high + 1)]
    may = Counter((s, t.time_ms, float(t.price), float(t.qty), t.is_buyer_maker) for s, t in made)
    assert Counter(_keys(_rows(every))) <= may, "the ledger and the market disagree: the test is wrong"
    assert all(must[key] <= trades[key] <= may[key] for key in may | trades), "a trade was lost or doubled"


def _rows(frames: Iterable[Any]) -> Iterator[dict[str, Any]]:
    convert = DATASETS["trades"].from_stream
    assert convert is not None
    for frame in frames:
        yield from convert(frame.payload)


def _keys(rows: Iterable[dict[str, Any]]) -> Iterator[tuple[Any, ...]]:
    for row in rows:
        yield row["symbol"], as_ms(row["trade_time"]), row["price"], row["qty"], row["is_buyer_maker"]
