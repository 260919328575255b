"""`bingx-recorder books` and `book`: over a short real recording; errors are one line and exit 1."""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from books.rebuild import instant_ms, iso
from cli import main
from simulator import Simulator
from storage import layout
from storage.lake import Lake
from tests.recorder.conftest import FAST, options, query, recording, wait_for


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("book-commands")
    with Simulator(symbols=["BTC-USDT"], seed=21, time_scale=5.0, **FAST) as sim:
        opts = options(sim, ["BTC-USDT"], ["incrDepth", "depth5@500ms"], silence_timeout_s=30.0)
        with recording(data_dir, opts):
            wait_for(lambda: sim.ledger.counts.get("BTC-USDT@incrDepth", 0) >= 60)
    return data_dir


def _run(data_dir: Path, *args: str) -> Any:
    return CliRunner().invoke(main, ["--data-dir", str(data_dir), *args])


def test_books_writes_snapshots_and_validate_reports_each_symbol(data_dir: Path) -> None:
    result = _run(data_dir, "books", "--levels", "5", "--interval", "200")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("BTC-USDT: ") and "0 resyncs" in result.output
    rows = query(data_dir / "lake", "SELECT trigger, len(bid_prices) AS n FROM book_snapshots")
    assert {r["trigger"] for r in rows} >= {"snapshot", "interval"}
    assert {r["n"] for r in rows if r["trigger"] == "interval"} == {5}
    again = _run(data_dir, "books", "--levels", "5", "--interval", "200")
    assert again.output == result.output  # the same rows again: the view still shows each once
    assert len(query(data_dir / "lake", "SELECT 1 FROM book_snapshots")) == len(rows)
    report = _run(data_dir, "books", "--validate")
    assert report.exit_code == 0, report.output
    # Every depth5 frame matches the rebuilt book: at its instant (exact) or a push or two off (lag: the two
    # feeds tick on separate timers, and which comes first at one instant varies from run to run).
    found = re.fullmatch(
        r"BTC-USDT: exact (100\.000%|-) of (\d+) frames \(\+(\d+) lag\); worst disagreement none; resyncs 0",
        report.output.strip(),
    )
    assert found is not None, report.output
    assert int(found[2]) + int(found[3]) >= 20, report.output  # 60+ pushes: frames every 100 ms were judged


def test_book_at_prints_json_best_first_with_times_in_iso(data_dir: Path) -> None:
    (last,) = query(
        data_dir / "lake", "SELECT epoch_ms(max(event_time)) AS t, max(update_id) AS id FROM book_updates"
    )
    at = iso(last["t"])
    result = _run(data_dir, "book", "BTC-USDT", "--at", at, "--levels", "3", "--format", "json")
    assert result.exit_code == 0, result.output
    book = orjson.loads(result.output)
    assert list(book) == ["symbol", "at", "update_id", "event_time", "bids", "asks"]
    assert book["at"] == at and book["update_id"] == last["id"] and len(book["bids"]) == 3
    assert book["bids"][0][0] > book["bids"][1][0] and book["asks"][0][0] < book["asks"][1][0]
    assert book["bids"][0][0] < book["asks"][0][0]
    by_ms = _run(data_dir, "book", "BTC-USDT", "--at", str(last["t"]), "--levels", "3", "--format", "json")
    assert orjson.loads(by_ms.output) == book
    table = _run(data_dir, "book", "BTC-USDT", "--at", at, "--levels", "2")
    assert table.exit_code == 0 and len(table.output.splitlines()) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["book", "BTC-USDT", "--at", "yesterday"], "expected ISO-8601"),
        (["book", "BTC-USDT", "--at", "2001-01-01"], "no incrDepth snapshot"),
        (["books", "--since", "soon"], "--since"),
    ],
)
def test_bad_times_and_unknown_instants_are_one_line_and_exit_1(
    data_dir: Path, args: list[str], message: str
) -> None:
    result = _run(data_dir, *args)
    assert result.exit_code == 1 and message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_books_on_a_lake_without_book_updates_says_what_to_record(tmp_path: Path) -> None:
    result = _run(tmp_path, "books")
    assert result.exit_code == 1 and "record incrDepth first" in result.output


def test_times_are_iso_8601_or_epoch_ms() -> None:
    assert instant_ms("2024-06-01T14:03:07.250Z") == 1717250587250
    assert instant_ms("2024-06-01T16:03:07.250+02:00") == 1717250587250
    assert instant_ms("2024-06-01T14:03:07.250") == 1717250587250  # UTC unless it has an offset
    assert instant_ms("1717250587250") == instant_ms(1717250587250) == 1717250587250
    assert iso(1717250587250) == "2024-06-01T14:03:07.250Z"


def test_record_takes_book_snapshots_off_by_default_and_as_levels_at_interval() -> None:
    from books.tracker import SnapshotOptions
    from recorder.command import Endpoints, options_from
    from recorder.errors import TopicError

    endpoints = Endpoints(Path("."), "http://127.0.0.1:1", "ws://127.0.0.1:1")
    base = {"symbols": "BTC-USDT", "channels": "incrDepth"}
    assert options_from(dict(base), endpoints)[0].book_snapshots is None
    chosen = options_from({**base, "book_snapshots": "10@250ms", "book_checkpoint": 2.0}, endpoints)[0]
    assert chosen.book_snapshots == SnapshotOptions(10, 250, 120_000, 5_000)
    quiet = options_from({**base, "book_tolerance": 800.0}, endpoints)[0].book_snapshots
    assert quiet is not None and quiet.levels == 0 and quiet.tolerance_ms == 800  # no rows, its tolerance
    with pytest.raises(TopicError, match="LEVELS@INTERVALms"):
        options_from({**base, "book_snapshots": "lots"}, endpoints)


def test_books_and_book_at_answer_the_same_after_compaction(data_dir: Path, tmp_path: Path) -> None:
    # Compaction puts a day into another hive scheme (symbol=/date=) and sets repeats aside in _superseded/:
    # the books commands must read every area, and give the answers they gave before.
    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy)
    (last,) = query(copy / "lake", "SELECT epoch_ms(max(event_time)) AS t FROM book_updates")
    at = ["book", "BTC-USDT", "--at", str(last["t"]), "--levels", "10", "--format", "json"]
    middle = ["book", "BTC-USDT", "--at", str(last["t"] - 3000), "--format", "json"]
    before = [_run(copy, *args) for args in (at, middle, ["books", "--validate"])]
    assert all(result.exit_code == 0 for result in before), [result.output for result in before]
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    # within the grace period (300 s) the old seal files stay beside the compacted file and _superseded/
    compacted = _run(copy, "compact", "--datasets", "book_updates", "--before", tomorrow)
    assert compacted.exit_code == 0, compacted.output
    assert any(layout.is_compacted(path) for path in Lake(copy / "lake").files("book_updates"))
    within = [_run(copy, *args) for args in (at, middle, ["books", "--validate"])]
    assert [result.output for result in within] == [result.output for result in before]
    for path in Lake(copy / "lake").files("book_updates"):  # the grace over: only the compacted files
        if not layout.is_compacted(path):
            Path(path).unlink()
    after = [_run(copy, *args) for args in (at, middle, ["books", "--validate"])]
    assert [result.output for result in after] == [result.output for result in before]
