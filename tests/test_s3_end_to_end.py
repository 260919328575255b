"""The lake on a real local S3 server (moto) end to end: `record` against the simulator, `backfill`,
`compact --grace 0` and `sql`, all with `--lake s3://...`; the views equal the simulator's truth, once."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from click.testing import CliRunner

from backfill.series import SERIES, window_end
from cli import main
from schemas import DATASETS
from simulator import Simulator
from storage.lake import Lake
from storage.views import connect
from tests.conftest import as_ms

ROOT = Path(__file__).parents[1]
SYMBOLS = ["BTC-USDT", "ETH-USDT"]
CHANNELS = ["trade", "kline_1m"]
TOPICS = [f"{symbol}@{channel}" for symbol in SYMBOLS for channel in CHANNELS]
IN_FLIGHT_MS = 1500  # frames sent this close to the recorder's close may still be in its socket buffer


def _keys(lake: str) -> list[str]:
    bucket = lake.removeprefix("s3://").split("/", 1)[0]
    return [item["Key"] for item in boto3.client("s3").list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.mark.slow
def test_record_backfill_compact_and_query_a_lake_on_s3(tmp_path: Path, s3_lake: str) -> None:
    with Simulator(symbols=SYMBOLS, seed=31, trades_per_second=6.0) as sim:
        at = ["--data-dir", str(tmp_path), "--lake", s3_lake, "--rest-url", str(sim.rest_url)]
        argv = [sys.executable, "-m", "cli", *at, "--ws-url", sim.ws_url, "--log-level", "WARNING", "record"]
        argv += ["--symbols", ",".join(SYMBOLS), "--channels", ",".join(CHANNELS), "--duration", "6"]
        argv += ["--no-heal", "--compact-every", "0", "--lake-interval", "1"]
        recorder = subprocess.run(argv, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT, timeout=90)
        assert recorder.returncode == 0
        sent = sim.ledger.counts
        now_ms = sim.ws.clock()
        since = str(now_ms - 3_600_000)
        runner = CliRunner()
        filled = runner.invoke(
            main, [*at, "backfill", "klines", "--symbols", ",".join(SYMBOLS), "--since", since]
        )
        assert filled.exit_code == 0, filled.output
        tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
        packed = runner.invoke(main, [*at, "compact", "--grace", "0", "--before", tomorrow])
        assert packed.exit_code == 0, packed.output

        assert not [key for key in _keys(s3_lake) if key.endswith(".partial") or "/_compaction/" in key]
        lake = Lake.from_uri(s3_lake)
        assert lake.files("trades") and all("/compacted-" in path for path in lake.files("trades"))
        # One connection with the three views read (each view lists its globs on S3 when queried)
        with connect(
            s3_lake, datasets=[DATASETS[name] for name in ("raw_messages", "trades", "klines")]
        ) as con:
            raw = con.sql("SELECT topic, text FROM raw_messages WHERE topic LIKE '%@%'").to_arrow_table()
            trades = con.sql(
                "SELECT symbol, trade_time, price, qty, is_buyer_maker FROM trades"
            ).to_arrow_table()
            klines = con.sql(
                "SELECT symbol, open_time, source FROM klines WHERE interval = '1m' "
                "ORDER BY symbol, open_time"
            ).to_arrow_table()
        # raw_messages (not compacted by default: one seal file each): nothing the simulator did not send,
        # and every frame it sent before the recorder's close began (less the frames in flight), once
        frames = [frame for topic in TOPICS for frame in sim.ledger.frames(topic)]
        assert len(frames) == sum(sent[topic] for topic in TOPICS)
        closed = {record.id: record.closed_ms for record in sim.ledger.connections}
        safe = Counter(
            frame.text
            for frame in frames
            if any(closed[c] is None or frame.sent_ms < closed[c] - IN_FLIGHT_MS for c in frame.connections)
        )
        landed, every = Counter(raw["text"].to_pylist()), Counter(frame.text for frame in frames)
        assert all(safe[text] <= landed[text] <= every[text] for text in every.keys() | landed.keys())
        proven = {frame.topic for frame in frames if frame.text in safe}
        assert proven == set(TOPICS) and 2 * sum(safe.values()) >= len(frames), "too little to prove it"
        for symbol in SYMBOLS:
            rows = [r for r in trades.to_pylist() if r["symbol"] == symbol]
            low = min(as_ms(r["trade_time"]) for r in rows)
            high = max(as_ms(r["trade_time"]) for r in rows) + 1
            truth = Counter(
                (t.time_ms, float(t.price), float(t.qty), t.is_buyer_maker)
                for t in sim.market.trades(symbol, low, high)
            )
            got = Counter((as_ms(r["trade_time"]), r["price"], r["qty"], r["is_buyer_maker"]) for r in rows)
            assert got == truth, symbol
            bars = [r for r in klines.to_pylist() if r["symbol"] == symbol]
            opens = [as_ms(r["open_time"]) for r in bars]
            market = sim.market.klines(symbol, "1m", opens[0], opens[-1] + 1, as_of_ms=now_ms)
            assert opens == [bar.open_ms for bar in market]  # an hour of bars, each once
            # Every bar closed and settled when the backfill began came from it; the last one or two (still
            # open, or closed less than the series' settle time before) are the stream's.
            final = window_end(SERIES["klines"], "1m", now_ms, None)
            settled = [r for r in bars if as_ms(r["open_time"]) < final]
            assert len(opens) >= 59 and len(settled) >= len(bars) - 2
            assert {r["source"] for r in settled} == {"backfill"}

        csv = runner.invoke(main, [*at, "sql", "--format", "csv", "SELECT count(*) AS n FROM trades"])
        assert csv.exit_code == 0, csv.output
        assert csv.stdout.split() == ["n", str(trades.num_rows)]
    assert not (tmp_path / "lake").exists()  # the journal and state are local; the lake is only on S3
    assert (tmp_path / "journal").is_dir() and (tmp_path / "state").is_dir()


def test_credentials_never_reach_the_log_even_at_debug(tmp_path: Path, s3_lake: str) -> None:
    secret, token = "secret-4b1d9e0c7a", "token-9f2e6a1c3b"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "AWS_SECRET_ACCESS_KEY": secret, "AWS_SESSION_TOKEN": token}
    argv = [
        sys.executable,
        "-m",
        "cli",
        "--data-dir",
        str(tmp_path),
        "--lake",
        s3_lake,
        "--log-level",
        "DEBUG",
    ]
    done = subprocess.run(
        [*argv, "sql", "SELECT count(*) AS n FROM trades"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "0" in done.stdout.split()
    assert secret not in done.stdout + done.stderr and token not in done.stdout + done.stderr
