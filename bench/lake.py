"""Lake: files created per hour by a whole-market recorder, compaction speed and memory on a 5M-row
partition, and the three bench queries through the views and over the files, on a lake in the recorder's
own (uncompacted) layout and on the same lake compacted."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from bench.harness import Config, Figure, figure, unavailable
from bench.query import FIRST_DAY, _time_query, shape, symbol_name, trades_table
from schemas import DATASETS

SECTION = "lake"
ROOT = Path(__file__).parents[1]
# The datasets of the eight stream channels (one file per seal each)
CHANNELS = tuple(dataset.name for dataset in DATASETS.values() if dataset.default_channel)
SEALS_PER_HOUR = 3600 / 30  # the default --lake-interval
POLLS_PER_HOUR = 4 * 60  # four snapshots (premium index, open interest, tickers, book tickers) every minute
CHILD = """
import json, sys, time
from datetime import date
from pathlib import Path
from schemas import DATASETS
from storage.compact import compact
from storage.lake import Lake
started = time.perf_counter()
summary = compact(Lake(sys.argv[1]), [DATASETS["trades"]], date(2100, 1, 1), grace_s=0)
elapsed = time.perf_counter() - started
peak = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
            if line.startswith("VmHWM:"))
print(json.dumps({"seconds": elapsed, "rows": summary.rows, "peak_kib": peak}))
"""


def run(config: Config) -> list[Figure]:
    try:
        from schemas import DATASETS
        from storage.lake import Lake
        from storage.views import connect
    except ImportError as error:
        return [unavailable(SECTION, "lake", "files", f"storage not importable: {error}")]
    figures = _files_per_hour(config, DATASETS, Lake)
    figures += _compaction(config, DATASETS["trades"], Lake)
    figures += _queries(config, DATASETS["trades"], Lake, connect)
    return figures


def _generic(dataset: Any, symbols: int, moment: datetime) -> pa.Table:
    """Rows of any dataset for `symbols` symbols at one moment: only the file count matters here."""
    count = symbols * 3
    columns = {}
    for field in dataset.schema:
        kind = field.type
        if field.name == "symbol":
            columns[field.name] = pa.array([symbol_name(index // 3) for index in range(count)])
        elif field.name == "source":
            columns[field.name] = pa.repeat("stream", count)
        elif pa.types.is_timestamp(kind):
            columns[field.name] = pa.array([moment] * count, pa.timestamp("us", tz="UTC")).cast(kind)
        elif pa.types.is_string(kind):
            columns[field.name] = pa.repeat("1m" if field.name == "interval" else "x", count)
        elif pa.types.is_list(kind):
            columns[field.name] = pa.array([[1.0]] * count, kind)
        elif pa.types.is_boolean(kind):
            columns[field.name] = pa.repeat(False, count)
        else:
            columns[field.name] = pa.array(range(count)).cast(kind)
    return pa.table(columns)


def _files_per_hour(config: Config, datasets: dict[str, Any], lake_type: Any) -> list[Figure]:
    """One seal of the whole market (1,000 symbols x 8 channels) in both layouts, files counted."""
    symbols = 20 if config.smoke else 1000
    moment = datetime(2025, 1, 1, 12, tzinfo=UTC)
    counts = {}
    for combined in (True, False):
        root = config.work / f"lake-seal-{combined}"
        shutil.rmtree(root, ignore_errors=True)
        with lake_type(root).batch(combined=combined) as batch:
            for name in (*CHANNELS, "raw_messages", "stream_events"):
                batch.append(datasets[name], _generic(datasets[name], symbols, moment))
            batch.reject("raw_messages", "garbage", "bad JSON: x", "stream", moment)
        counts[combined] = len(batch.paths)
        shutil.rmtree(root, ignore_errors=True)
    note = f"{symbols:,} symbols x 8 channels, one 30 s seal measured; polls: 4 snapshots a minute"
    now = counts[True] * SEALS_PER_HOUR + POLLS_PER_HOUR  # poll rounds: one file per round
    before = (
        counts[False] * SEALS_PER_HOUR + POLLS_PER_HOUR * symbols + SEALS_PER_HOUR * 10
    )  # + a reject each
    return [
        figure(SECTION, "files per seal, whole market", "files", [counts[True]], note=note),
        figure(SECTION, "files per seal, one per partition (before)", "files", [counts[False]], note=note),
        figure(
            SECTION, "files created per hour, whole market", "files/h", [now], note=note, target="<= 10,000"
        ),
        figure(SECTION, "files created per hour, one per partition (before)", "files/h", [before], note=note),
    ]


def _recorder_lake(
    root: Path, lake_type: Any, dataset: Any, symbols: int, days: int, per_day: int, seals: int
) -> None:
    """Trades in the recorder's layout: `seals` files a day, each holding every symbol (sorted)."""
    marker = root / "complete.json"
    if marker.exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    lake = lake_type(root)
    index = pa.array(range(per_day), pa.int64())
    for day in range(days):
        tables = [
            trades_table(symbol, FIRST_DAY + timedelta(days=day), index, seed=symbol * 1000 + day)
            for symbol in range(symbols)
        ]
        whole = pa.concat_tables(tables)
        whole = whole.sort_by("received_at")
        step = whole.num_rows // seals + 1
        for start in range(0, whole.num_rows, step):
            lake.write_table(dataset, whole.slice(start, step), combined=True)
    marker.write_text(json.dumps({"symbols": symbols, "days": days, "per_day": per_day, "seals": seals}))


def _compact_in_child(root: Path) -> dict[str, Any]:
    child = subprocess.run(
        [sys.executable, "-c", CHILD, str(root)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    return result


def _compaction(config: Config, dataset: Any, lake_type: Any) -> list[Figure]:
    """Compact one symbol-day of 5M trades (1M quick) written as 120 seal files; bytes per row after."""
    rows = 20_000 if config.smoke else 1_000_000 if config.quick else 5_000_000
    root = config.work / "lake-5m"
    shutil.rmtree(root, ignore_errors=True)
    _recorder_lake(root, lake_type, dataset, 1, 1, rows, 120)
    before = sum(path.stat().st_size for path in (root / "trades").rglob("*.parquet"))
    result = _compact_in_child(root)
    files = list((root / "trades").rglob("*.parquet"))
    after = sum(path.stat().st_size for path in files)
    note = (
        f"{result['rows']:,} trades of one symbol-day in 120 seal files -> {len(files)} files "
        "(the first trades fall on the day before), every column"
    )
    shutil.rmtree(root, ignore_errors=True)
    return [
        figure(
            SECTION,
            "compaction rows/s (5M-row partition)",
            "rows/s",
            [result["rows"] / result["seconds"]],
            note=note,
        ),
        figure(
            SECTION, "compaction peak RSS (5M-row partition)", "MiB", [result["peak_kib"] / 1024], note=note
        ),
        figure(SECTION, "trades on disk, seal files", "B/row", [before / result["rows"]], note=note),
        figure(
            SECTION, "trades on disk, compacted", "B/row", [after / result["rows"]], note=note, target="<= 5"
        ),
    ]


def _queries(config: Config, dataset: Any, lake_type: Any, connect: Any) -> list[Figure]:
    symbols, days, per_day = shape(config)
    seals = 12 if config.smoke else 48 if config.quick else 288
    uncompacted = config.cache / f"recorder-lake-{symbols}x{days}x{per_day}x{seals}"
    _recorder_lake(uncompacted, lake_type, dataset, symbols, days, per_day, seals)
    compacted = config.work / "lake-compacted"
    shutil.rmtree(compacted, ignore_errors=True)
    shutil.copytree(uncompacted, compacted)
    started = time.perf_counter()
    result = _compact_in_child(compacted)
    total = symbols * days * per_day
    figures = [
        figure(
            SECTION,
            "compaction rows/s (whole bench lake)",
            "rows/s",
            [result["rows"] / (time.perf_counter() - started)],
            note=f"{total:,} trades, {symbols} symbols x {days} days in {seals * days} seal files",
        )
    ]
    layouts = {
        "uncompacted": (uncompacted, f"{uncompacted}/trades/date=*/*.parquet", f"{seals} seal files a day"),
        "compacted": (compacted, f"{compacted}/trades/symbol=*/date=*/*.parquet", "one file per symbol-day"),
    }
    for label, (root, glob, shape_note) in layouts.items():
        note = f"{total:,} trades, {symbols} symbols x {days} days, {shape_note}"
        con = connect(root)
        try:
            for query, sql in _sql(f"read_parquet('{glob}', hive_partitioning = true)").items():
                timed = {
                    source: _time_query(con, f"{query} ({source}, {label})", text, config.repeats, note)
                    for source, text in sql.items()
                }
                figures += timed.values()
                view, files = timed["view"].median, timed["files"].median
                if view and files:
                    ratio = figure(
                        SECTION,
                        f"{query}: view / files ({label})",
                        "x",
                        [view / files],
                        note="same run",
                        target="<= 1.2" if label == "compacted" else "",
                    )
                    figures.append(ratio)
        finally:
            con.close()
    shutil.rmtree(compacted, ignore_errors=True)
    return figures


def _sql(files: str) -> dict[str, dict[str, str]]:
    day, symbol = FIRST_DAY.isoformat(), symbol_name(0)
    bars = (
        "SELECT time_bucket(INTERVAL '1 minute', trade_time) AS minute, sum(price * qty) / sum(qty) AS vwap, "
        "sum(qty) AS volume, count(*) AS trades FROM {source} WHERE symbol = '{symbol}' AND date = '{day}' "
        "GROUP BY minute ORDER BY minute"
    )
    counts = "SELECT symbol, count(*) FROM {source} WHERE date = '{day}' GROUP BY symbol ORDER BY symbol"
    scan = "SELECT count(*), sum(qty), max(price) FROM {source} WHERE date = '{day}'"
    return {
        name: {
            "view": text.format(source="trades", symbol=symbol, day=day),
            "files": text.format(source=files, symbol=symbol, day=day),
        }
        for name, text in {
            "1-minute VWAP bars of one symbol-day": bars,
            "per-symbol counts for a day": counts,
            "full-day scan": scan,
        }.items()
    }
