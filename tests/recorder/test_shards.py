"""`record --shard i/n`: a stable split of the symbols; two shards on one lake record every topic once."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from recorder.shards import Shard, identity, of
from simulator import Simulator
from storage.lake import Lake
from tests.recorder.conftest import FAST, options, query, recording, wait_for

ROOT = Path(__file__).parents[2]
SYMBOLS = ["BTC-USDT", "ETH-USDT", "SOL-USDT", "DOGE-USDT", "XRP-USDT", "ADA-USDT"]
CHANNELS = ["trade", "bookTicker"]


def test_a_symbols_shard_is_a_pinned_stable_hash_not_pythons_salted_one() -> None:
    # sha256(name)[:8] big-endian mod n: pinned here, so a change of rule cannot pass unnoticed
    assert [of(symbol, 2) for symbol in SYMBOLS] == [0, 0, 1, 1, 0, 1]
    assert of("BTC-USDT", 1000) == 162
    code = "from recorder.shards import of; print(of('BTC-USDT', 1000))"
    salted = {**os.environ, "PYTHONHASHSEED": "random", "PYTHONPATH": str(ROOT)}
    again = subprocess.run(
        [sys.executable, "-c", code], env=salted, capture_output=True, text=True, check=True
    )
    assert again.stdout.strip() == "162"


def test_the_shards_of_a_list_are_disjoint_and_cover_it() -> None:
    names = [f"S{n:03d}-USDT" for n in range(300)]
    parts = [Shard(index, 3).select(names) for index in range(3)]
    assert sorted(name for part in parts for name in part) == sorted(names)
    assert all(len(part) > 60 for part in parts)  # roughly even, not a degenerate split
    assert Shard().select(names) == names


def test_a_bad_shard_is_one_line_naming_what_is_allowed() -> None:
    for text in ("2/2", "1", "a/b", "-1/2", "0/0"):
        with pytest.raises(ValueError, match=r"--shard must be i/n with 0 <= i < n"):
            Shard.parse(text)
    result = CliRunner().invoke(
        main, ["record", "--symbols", "BTC-USDT", "--channels", "trade", "--shard", "3/2"]
    )
    assert result.exit_code == 1 and "--shard must be i/n" in result.output
    owned_by_0 = CliRunner().invoke(
        main, ["record", "--symbols", "BTC-USDT", "--channels", "trade", "--shard", "1/2"]
    )
    assert owned_by_0.exit_code == 1 and "owns none of the 1 symbols" in owned_by_0.output


def test_the_identity_carries_host_and_shard_without_dashes() -> None:
    assert identity(Shard(1, 4), "box-7_a.example") == "box7a.example.s1of4"
    assert identity(Shard(), "box") == "box"


def test_an_explicit_symbol_list_is_split_too(tmp_path: Path) -> None:
    with Simulator(symbols=SYMBOLS, seed=43, trades_per_second=2.0, **FAST) as sim:
        opts = options(sim, SYMBOLS, ["trade"], shard=Shard(1, 2))
        with recording(tmp_path, opts) as recorder:
            wait_for(lambda: sum(len(c.acked) for c in recorder.connections) == 3, 20)
            assert sorted(recorder.owner) == sorted(f"{s}@trade" for s in Shard(1, 2).select(SYMBOLS))
            assert all(".s1of2-" in c.name for c in recorder.connections)


def _record(sim: Simulator, data_dir: Path, lake: Path, shard: str) -> subprocess.Popen[bytes]:
    # shard 0 gives --lake before the command (the global option), shard 1 after it (as a service does)
    where = ["--lake", str(lake)]
    argv = [sys.executable, "-m", "cli", "--data-dir", str(data_dir), *(where if shard == "0/2" else [])]
    argv += ["--ws-url", sim.ws_url, "--rest-url", str(sim.rest_url), "--log-level", "WARNING", "record"]
    argv += ["--symbols", "all", "--channels", ",".join(CHANNELS), "--shard", shard, "--duration", "6"]
    argv += ["--no-heal", "--compact-every", "0", "--lake-interval", "1", *(where if shard != "0/2" else [])]
    return subprocess.Popen(argv, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)


@pytest.mark.slow
def test_two_shards_on_one_lake_record_disjoint_symbols_whose_union_is_every_symbol_once(
    tmp_path: Path,
) -> None:
    lake = tmp_path / "shared-lake"
    with Simulator(symbols=SYMBOLS, seed=41, trades_per_second=4.0) as sim:
        shards = [_record(sim, tmp_path / f"host{index}", lake, f"{index}/2") for index in range(2)]
        assert [process.wait(90) for process in shards] == [0, 0]
        sent = sim.ledger.counts
        trades_sent = {
            symbol: sum(len(json.loads(f.text)["data"]) for f in sim.ledger.frames(f"{symbol}@trade"))
            for symbol in SYMBOLS
        }
    subscribed = query(
        lake, "SELECT DISTINCT connection, topic FROM stream_events WHERE event = 'subscribed'"
    )
    by_shard: dict[int, set[str]] = {0: set(), 1: set()}
    for row in subscribed:
        by_shard[int(str(row["connection"]).split(".s", 1)[1][0])].add(str(row["topic"]))
    symbols_of = [{topic.partition("@")[0] for topic in by_shard[index]} for index in range(2)]
    assert symbols_of == [set(Shard(index, 2).select(SYMBOLS)) for index in range(2)]
    assert not symbols_of[0] & symbols_of[1] and symbols_of[0] | symbols_of[1] == set(SYMBOLS)
    assert not (tmp_path / "host0" / "lake").exists() and not (tmp_path / "host1" / "lake").exists()
    # every topic once in the views: each frame sent is one raw_messages row, each trade one trades row
    topics = [f"{symbol}@{channel}" for symbol in SYMBOLS for channel in CHANNELS]
    landed = Counter(r["topic"] for r in query(lake, "SELECT topic FROM raw_messages WHERE topic LIKE '%@%'"))
    assert landed == Counter({topic: sent[topic] for topic in topics})
    assert _trades(lake) == trades_sent and all(trades_sent.values())
    names = [path.rsplit("/", 1)[1] for path in Lake(lake).files("trades")]
    assert {".s0of2-" in name for name in names} == {True, False}  # both shards' seals, told apart by name
    # compaction over the union: one file per symbol and day, the same answers
    tomorrow = (datetime.now(UTC) + timedelta(days=1)).date().isoformat()
    packed = CliRunner().invoke(
        main,
        [
            "--data-dir",
            str(tmp_path / "host0"),
            "--lake",
            str(lake),
            "compact",
            "--grace",
            "0",
            "--before",
            tomorrow,
        ],
    )
    assert packed.exit_code == 0, packed.output
    assert all("/compacted-" in path for path in Lake(lake).files("trades"))
    assert _trades(lake) == trades_sent
    # coverage over the union, from either shard's data dir: every symbol's trade topic is there
    report = CliRunner().invoke(
        main, ["--data-dir", str(tmp_path / "host1"), "--lake", str(lake), "coverage", "--format", "csv"]
    )
    cells = list(csv.DictReader(io.StringIO(report.output)))
    assert {cell["symbol"] for cell in cells if cell["dataset"] == "trades"} == set(SYMBOLS), report.output


def _trades(lake: Path) -> dict[str, int]:
    rows = query(lake, "SELECT symbol, count(*) AS n FROM trades GROUP BY symbol")
    return {str(row["symbol"]): int(str(row["n"])) for row in rows}
