"""Retention: raw_messages, superseded rows and the journal archive go after N days; normalized data only
when asked; a dry run deletes nothing."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path

from click.testing import CliRunner

from cli import main
from schemas import DATASETS
from storage.compact import compact
from storage.retention import prune
from tests.storage.lakes import TRADES, build, snapshot

RAW = DATASETS["raw_messages"]
TODAY = date(2024, 6, 10)  # the lake's days are 2024-06-01 and 2024-06-02


def _raw(lake_root: Path) -> None:
    from storage.lake import Lake

    rows = [
        {
            "connection": "c",
            "seq": day,
            "topic": None,
            "text": "x",
            "source": "stream",
            "received_at": 1_717_200_000_000_000 + day * 86_400_000_000,
        }
        for day in range(9)
    ]
    Lake(lake_root).write(RAW, rows)


def test_prune_deletes_old_raw_and_superseded_days_and_keeps_normalized_data(tmp_path: Path) -> None:
    lake = build(tmp_path, 3)
    _raw(tmp_path)
    compact(lake, [TRADES], date(2030, 1, 1), grace_s=0)
    archive = tmp_path / "archive"
    archive.mkdir()
    (archive / "old.seg").write_text("x")
    os.utime(archive / "old.seg", (1_717_200_000, 1_717_200_000))
    trades = snapshot(tmp_path)
    dry = prune(lake, keep_raw_days=7, archive=archive, dry_run=True, today=TODAY)
    assert sorted(path.split("lake-")[-1][-15:] for path in dry.paths if "raw_messages" in path) == [
        "date=2024-06-01",
        "date=2024-06-02",
    ]
    assert any("_superseded/trades" in path for path in dry.paths) and str(archive / "old.seg") in dry.paths
    assert len(list((tmp_path / "raw_messages").iterdir())) == 9  # a dry run deletes nothing
    done = prune(lake, keep_raw_days=7, archive=archive, today=TODAY)
    assert done.paths == dry.paths and done.bytes > 0
    assert sorted(p.name for p in (tmp_path / "raw_messages").iterdir())[0] == "date=2024-06-03"
    assert not list((tmp_path / "_superseded").rglob("*.parquet")) and not (archive / "old.seg").exists()
    assert snapshot(tmp_path) == trades  # normalized data untouched


def test_prune_deletes_a_normalized_dataset_only_when_named(tmp_path: Path) -> None:
    lake = build(tmp_path, 4)
    prune(lake, keep_raw_days=0, today=TODAY)
    assert snapshot(tmp_path)
    prune(lake, keep_raw_days=7, datasets=["trades"], keep_data_days=7, today=TODAY)
    assert snapshot(tmp_path) == [] and snapshot(tmp_path, "klines")


def test_compact_prune_and_rebuild_commands_report_in_one_line(tmp_path: Path) -> None:
    build(tmp_path / "lake", 5)
    run = CliRunner().invoke
    dry = run(main, ["--data-dir", str(tmp_path), "compact", "--dry-run", "--datasets", "trades"])
    assert dry.exit_code == 0 and "would compact 2 dataset-days" in dry.output
    done = run(main, ["--data-dir", str(tmp_path), "compact", "--grace", "0", "--before", "2030-01-01"])
    assert done.exit_code == 0 and "compacted 4 dataset-days" in done.output, done.output
    bad = run(main, ["--data-dir", str(tmp_path), "compact", "--older-than", "soon"])
    assert bad.exit_code == 1 and bad.output.count("\n") == 1 and "90s, 30m, 1h or 2d" in bad.output
    unknown = run(
        main, ["--data-dir", str(tmp_path), "rebuild", "--datasets", "nope", "--since", "2024-06-01"]
    )
    assert unknown.exit_code == 1 and "unknown nope" in unknown.output
    pruned = run(main, ["--data-dir", str(tmp_path), "prune", "--dry-run"])
    assert pruned.exit_code == 0 and "would delete" in pruned.output
