"""`make demo`: the whole pipeline against the local simulator, through the real CLI, in about 30 seconds.

An outage is injected into the recording (every socket dropped and refused for a few seconds), healed from
REST, and the coverage report printed: the book channels' windows unhealable, trades and klines healed.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import schemas

SYMBOLS = "BTC-USDT,ETH-USDT"
CHANNELS = ",".join(schemas.CHANNELS)  # every stream dataset, each on its default channel

SUMMARY = """
SELECT 'trades' AS dataset, source, count(*) AS rows FROM trades GROUP BY ALL
UNION ALL SELECT 'klines', source, count(*) FROM klines GROUP BY ALL
UNION ALL SELECT 'depth_snapshots', source, count(*) FROM depth_snapshots GROUP BY ALL
UNION ALL SELECT 'book_updates', source, count(*) FROM book_updates GROUP BY ALL
UNION ALL SELECT 'tickers', source, count(*) FROM tickers GROUP BY ALL
UNION ALL SELECT 'book_tickers', source, count(*) FROM book_tickers GROUP BY ALL
UNION ALL SELECT 'mark_prices', source, count(*) FROM mark_prices GROUP BY ALL
UNION ALL SELECT 'last_prices', source, count(*) FROM last_prices GROUP BY ALL
UNION ALL SELECT 'stream_events', event, count(*) FROM stream_events GROUP BY ALL
ORDER BY 1, 2
"""

# One row per 1-minute bar: the backfilled (settled) bar wins over the stream's updates of the same bar.
BARS = """
SELECT symbol, open_time, open, high, low, close, round(volume, 4) AS volume, source, is_final
FROM klines WHERE "interval" = '1m' ORDER BY symbol, open_time DESC LIMIT 12
"""


def run(data_dir: Path, seconds: float = 10.0, outage_s: float = 3.0) -> None:
    """Start the simulator, record `seconds` of every channel with an outage in it, heal it, backfill the
    same window, print queries and the coverage summary (and write its heatmap next to the lake)."""
    from simulator import Simulator

    shutil.rmtree(data_dir, ignore_errors=True)
    with Simulator(symbols=SYMBOLS.split(","), seed=7, bingx_budgets=True) as sim:
        cli = [sys.executable, "-m", "cli", "--data-dir", str(data_dir), "--rest-url", sim.rest_url]
        cli += ["--ws-url", sim.ws_url, "--log-level", "ERROR"]
        started_ms = int(time.time() * 1000) - 10 * 60_000
        _step(f"recording {SYMBOLS} on {len(CHANNELS.split(','))} channels")
        argv = [*cli, "record", "--symbols", SYMBOLS, "--channels", CHANNELS]
        recorder = subprocess.Popen([*argv, "--no-heal", "--lake-interval", "2"], env=_env())
        time.sleep(min(4.0, seconds))
        _step(f"outage: every socket dropped and refused for {outage_s:.0f} s")
        sim.faults.outage(outage_s)
        time.sleep(outage_s)
        _until_every_topic_flows_again(sim)  # the reconnect backoff is jittered: wait for it, not a guess
        time.sleep(max(12.0, seconds - 4.0))  # the healed windows need ~10 s of stream after them to settle
        recorder.send_signal(signal.SIGINT)
        if recorder.wait(30) != 0:
            raise SystemExit("the recorder failed")
        _step("healing the outage windows from REST")
        _call([*cli, "heal", "--datasets", "trades,klines"])
        _step("coverage: every gap classified (depth and incrDepth have no REST history)")
        html, png = data_dir / "coverage.html", data_dir / "coverage.png"
        _call([*cli, "coverage", "--by", "hour", "--html", str(html), "--png", str(png)])
        _step("backfilling the last 10 minutes of 1m klines from REST")
        _call(
            [*cli, "backfill", "klines", "--symbols", SYMBOLS, "--interval", "1m", "--since", str(started_ms)]
        )
        _step("rows per dataset and source")
        _call([*cli, "sql", SUMMARY])
        _step("1m bars: stream and backfill unified, one row per bar")
        _call([*cli, "sql", BARS])
    print(f"\nThe lake is in {data_dir}/lake; the coverage heatmap in {data_dir}/coverage.html and .png.")
    print(f"Try: bingx-recorder --data-dir {data_dir} sql 'SELECT * FROM stream_gaps'")


def _until_every_topic_flows_again(sim: Any, timeout_s: float = 60.0) -> None:
    topics = [f"{symbol}@{channel}" for symbol in SYMBOLS.split(",") for channel in CHANNELS.split(",")]
    before = {topic: sim.ledger.counts.get(topic, 0) for topic in topics}
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(sim.ledger.counts.get(t, 0) <= before[t] for t in topics):
        time.sleep(0.2)


def _step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(Path(__file__).parent), "MPLBACKEND": "Agg"}


def _call(argv: list[str]) -> None:
    subprocess.run(argv, check=True, env=_env())


if __name__ == "__main__":
    run(Path(sys.argv[1] if len(sys.argv) > 1 else "demo-data"))
