"""The benchmark harness at tiny sizes: sections produce figures or say why not, results and README agree."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import frames, parsing, proc, query, report
from bench.__main__ import run_sections
from bench.harness import Config, Figure, figure, unavailable, write_results


def test_figure_summarises_runs_as_median_min_and_max() -> None:
    item = figure("s", "n", "ms", [3.0, 1.0, 10.0, 2.0, 4.0])
    assert (item.median, item.low, item.high, item.runs) == (3.0, 1.0, 10.0, 5)


def test_an_unavailable_figure_has_no_number_and_keeps_its_reason_on_one_line() -> None:
    item = unavailable("ingest", "frames/s", "frames/s", "recorder\n  not there")
    assert item.median is None and not item.available
    assert item.note == "recorder not there"


def test_trade_frames_hold_one_to_five_trades_newest_first() -> None:
    built = frames.build("trade", 200)
    sizes = {len(message["data"]) for message in built.messages}
    assert sizes == {1, 2, 3, 4, 5}
    for message in built.messages:
        times = [trade["T"] for trade in message["data"]]
        assert times == sorted(times, reverse=True)
        assert message["dataType"].endswith("@trade")


def test_depth_frames_have_twenty_levels_with_asks_descending_like_bingx() -> None:
    for message in frames.build("depth20", 50).messages:
        bids = [float(price) for price, _ in message["data"]["bids"]]
        asks = [float(price) for price, _ in message["data"]["asks"]]
        assert len(bids) == len(asks) == 20
        assert bids == sorted(bids, reverse=True) and asks == sorted(asks, reverse=True)
        assert bids[0] < asks[-1]  # best bid below best ask (the last ask)


def test_frames_are_gzip_members_of_their_json_text() -> None:
    import gzip

    built = frames.build("ticker", 10)
    assert [gzip.decompress(wire).decode() for wire in built.wire] == built.texts
    assert len(set(built.texts)) == 10


def test_parsing_reports_ccxt_unavailable_with_a_reason_when_it_may_not_install(tmp_path: Path) -> None:
    figures = parsing.run(Config(smoke=True, repeats=1), allow_install=False, ccxt_target=tmp_path / "none")
    ours = [item for item in figures if ": ours " in item.name]
    theirs = [item for item in figures if "ccxt" in item.name]
    assert len(ours) == 6 and all(item.available and item.median and item.median > 0 for item in ours)
    assert len(theirs) == 4 and all(
        not item.available and "ccxt is not installed" in item.note for item in theirs
    )


def test_query_lake_holds_every_generated_trade_once(tmp_path: Path) -> None:
    from schemas import DATASETS
    from storage.lake import Lake
    from storage.views import connect

    root, _ = query.ensure_lake(tmp_path, Lake, DATASETS["trades"], symbols=2, days=2, per_day=500)
    con = connect(root)
    try:
        counts = con.execute(
            "SELECT symbol, date::VARCHAR, count(*) FROM trades GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    finally:
        con.close()
    assert counts == [(s, d, 500) for s in ("BTC-USDT", "S001-USDT") for d in ("2025-01-01", "2025-01-02")]
    assert len(list(root.glob("trades/*/*/*.parquet"))) == 4  # one file per partition


def test_query_section_times_every_query(tmp_path: Path) -> None:
    figures = query.run(Config(smoke=True, repeats=1, cache=tmp_path, work=tmp_path / "work"))
    timed = [item for item in figures if item.unit == "ms"]
    assert [item.name for item in timed] == list(query.queries(tmp_path))
    assert all(item.available for item in timed)


def test_a_failing_section_is_reported_and_the_others_still_run() -> None:
    def broken(config: Config) -> list[Figure]:
        raise RuntimeError("boom\nsecond line")

    def fine(config: Config) -> list[Figure]:
        return [figure("fine", "x", "s", [1.0])]

    figures, status = run_sections({"broken": broken, "fine": fine}, Config(smoke=True), lambda _: None)
    assert status == {"broken": "skipped: failed: RuntimeError: boom", "fine": "ran"}
    assert [item.available for item in figures] == [False, True]


def test_results_file_holds_the_figures_the_sections_and_the_machine(tmp_path: Path) -> None:
    items = [
        figure("query", "bars", "ms", [1.0, 2.0, 3.0]),
        unavailable("ingest", "rate", "frames/s", "no recorder"),
    ]
    path = write_results(items, {"query": "ran"}, datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC), tmp_path)
    document = json.loads(path.read_text())
    assert path.name == "20260102T030405Z.json"
    assert [f["median"] for f in document["figures"]] == [2.0, None]
    assert document["figures"][1]["note"] == "no recorder"
    assert document["machine"]["cpu_count"] == os.cpu_count()
    assert "pyarrow" in document["machine"]["packages"]


def test_readme_block_is_replaced_not_appended(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("# bench\n\nintro\n")
    for median in (1.0, 2.0):
        text = report.snippet(
            [figure("query", "bars", "ms", [median])], {"ingest": "skipped: x"}, {"cpu_count": 2}
        )
        report.write_readme(text, readme)
    content = readme.read_text()
    assert content.startswith("# bench\n\nintro\n")
    assert content.count("## Performance") == 1 and "| query | bars | 2 |" in content
    assert "Not measured in this run: ingest (skipped: x)." in content


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_process_figures_come_from_proc() -> None:
    sum(range(200_000))
    seconds = proc.cpu_seconds(os.getpid())
    assert seconds is not None and seconds > 0
    rss = proc.peak_rss_mb(os.getpid())
    assert rss is not None and rss > 1


def test_backfill_summary_line_is_read() -> None:
    from bench.backfill_rate import job_summary

    line = "klines: 10 rows written in 2 files, 3 pages, 4 requests, 1 retries, 2 throttled (0.5 s), 12.3 s"
    assert job_summary("progress…\n" + line + "\n") == {
        "requests": 4.0,
        "retries": 1.0,
        "throttled": 2.0,
        "seconds_throttled": 0.5,
        "seconds": 12.3,
    }
    assert job_summary("no summary") == {}


def test_landed_counts_data_frames_and_when_they_became_visible(tmp_path: Path) -> None:
    from datetime import timedelta

    from bench import landed
    from schemas import DATASETS
    from storage.lake import Lake

    start = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        {"connection": "c", "seq": seq, "topic": None if seq == 0 else "BTC-USDT@trade", "text": "{}",
         "received_at": start + timedelta(seconds=seq), "source": "stream"}
        for seq in range(5)
    ]  # fmt: skip
    Lake(tmp_path).write(DATASETS["raw_messages"], rows)
    count, visible, problem = landed.frames(tmp_path, since_us=(start.timestamp() + 3) * 1e6)
    assert (count, len(visible), problem) == (4, 2, "")
    assert all(delay > 0 for delay in visible)  # the file was written long after 2026-01-01
    assert landed.frames(tmp_path / "empty") == (0, [], "no raw_messages files landed")


def test_sampling_summary_ranks_functions_by_samples(tmp_path: Path) -> None:
    from bench import sampling

    raw = tmp_path / "profile.raw"
    raw.write_text(
        "process 1:python -m cli;thread 1;main (cli.py:1);recv (ws.py:9) 30\n"
        "process 1:python -m cli;thread 2;main (cli.py:1);convert (convert.py:5) 70\n"
        "garbage line\n"
    )
    text = sampling.summarise(raw)
    self_part = text.split("inclusive:")[0]
    assert text.startswith("100 samples")
    assert self_part.index("70.0%  convert (convert.py:5)") < self_part.index("30.0%  recv (ws.py:9)")
    assert "100.0%  main (cli.py:1)" in text.split("inclusive:")[1]


def test_lake_section_counts_files_compacts_and_times_every_query(tmp_path: Path) -> None:
    from bench import lake

    figures = lake.run(Config(smoke=True, repeats=1, cache=tmp_path, work=tmp_path / "work"))
    by_name = {item.name: item for item in figures}
    assert by_name["files per seal, whole market"].median == 11  # 10 datasets + one reject file
    assert by_name["files per seal, one per partition (before)"].median == 8 * 20 + 3
    assert by_name["compaction rows/s (5M-row partition)"].available
    ratios = [item for item in figures if item.unit == "x"]
    assert len(ratios) == 6 and all(item.available for item in ratios)
