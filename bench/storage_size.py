"""Storage: bytes per row on disk per dataset, written through the Lake, next to raw gzip and raw JSON."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import frames as frame_builder
from bench.harness import Config, Figure, figure, unavailable
from bench.parsing import DATASET_OF

SECTION = "storage"


def run(config: Config) -> list[Figure]:
    """Write realistic rows per dataset in recorder-sized batches and measure the files they make."""
    try:
        from schemas import DATASETS
        from storage.lake import Lake
    except ImportError as error:
        return [unavailable(SECTION, "bytes per row", "B/row", f"lake not importable yet: {error}")]
    root = config.work / "storage-lake"
    shutil.rmtree(root, ignore_errors=True)
    lake = Lake(root)
    frames_per_kind = {"trade": 70_000, "depth20": 20_000, "ticker": 20_000}
    figures: list[Figure] = []
    raw_texts: list[tuple[str, str, int]] = []
    for kind, count in frames_per_kind.items():
        size = count // 1000 if config.smoke else count // 10 if config.quick else count
        built = frame_builder.build(kind, size, seed=1)
        dataset = DATASETS[DATASET_OF[kind]]
        rows = _rows(dataset, built.messages)
        written = _write_batches(lake, dataset, rows, batch=len(rows) // 4 + 1)
        size = sum(Path(path).stat().st_size for path in written)
        note = f"{len(rows):,} rows in {len(written)} files"
        figures.append(
            figure(SECTION, f"{dataset.name}: Parquet (Lake.write)", "B/row", [size / len(rows)], note=note)
        )
        figures.append(
            figure(
                SECTION,
                f"{dataset.name}: raw gzip frames",
                "B/row",
                [sum(map(len, built.wire)) / len(rows)],
                note="one gzip member per frame, as sent",
            )
        )
        figures.append(
            figure(
                SECTION,
                f"{dataset.name}: raw JSON",
                "B/row",
                [sum(map(len, built.texts)) / len(rows)],
                note="decompressed frame text",
            )
        )
        if dataset.name == "trades":
            figures.append(
                _compacted(config.work / "storage-compacted", lake_type=Lake, dataset=dataset, rows=rows)
            )
        topics = [message["dataType"] for message in built.messages]
        raw_texts.extend(zip(topics, built.texts, map(len, built.wire), strict=True))
    figures.append(_raw_messages(lake, DATASETS["raw_messages"], raw_texts))
    shutil.rmtree(root, ignore_errors=True)
    return figures


def _rows(dataset: Any, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    received = datetime(2025, 10, 9, tzinfo=UTC)
    rows = []
    for index, message in enumerate(messages):
        at = received + timedelta(microseconds=index * 1_737)
        for row in dataset.from_stream(message):
            row["received_at"] = at
            row["source"] = "stream"
            rows.append(row)
    return rows


def _write_batches(lake: Any, dataset: Any, rows: list[dict[str, Any]], batch: int) -> list[str]:
    """Write in a few batches, as the recorder's bounded journal conversion would."""
    written: list[str] = []
    for start in range(0, len(rows), batch):
        written.extend(str(path) for path in lake.write(dataset, rows[start : start + batch]))
    return written


def _raw_messages(lake: Any, dataset: Any, texts: list[tuple[str, str, int]]) -> Figure:
    """The lossless raw_messages dataset: bytes per frame, against the frame's JSON and gzip sizes."""
    received = datetime(2025, 10, 9, tzinfo=UTC)
    rows = [
        {
            "connection": "c0",
            "seq": seq,
            "topic": topic,
            "text": text,
            "source": "stream",
            "received_at": received + timedelta(microseconds=seq * 911),
        }
        for seq, (topic, text, _) in enumerate(texts)
    ]
    written = _write_batches(lake, dataset, rows, batch=len(rows) // 4 + 1)
    size = sum(Path(path).stat().st_size for path in written)
    json_bytes = sum(len(text) for _, text, _ in texts)
    gzip_bytes = sum(wire for _, _, wire in texts) / len(rows)
    note = f"{len(rows):,} frames; JSON {json_bytes / len(rows):.0f} B/frame, gzip {gzip_bytes:.0f} B/frame"
    return figure(SECTION, "raw_messages: Parquet (Lake.write)", "B/frame", [size / len(rows)], note=note)


def _compacted(root: Path, lake_type: Any, dataset: Any, rows: list[dict[str, Any]]) -> Figure:
    """The same rows as the recorder writes them (four seals, every symbol per file), then compacted."""
    from datetime import date

    from storage.compact import compact

    shutil.rmtree(root, ignore_errors=True)
    lake = lake_type(root)
    step = len(rows) // 4 + 1
    for start in range(0, len(rows), step):
        lake.write(dataset, rows[start : start + step], combined=True)
    compact(lake, [dataset], date(2100, 1, 1), grace_s=0)
    files = list((root / dataset.name).rglob("*.parquet"))
    size = sum(path.stat().st_size for path in files)
    shutil.rmtree(root, ignore_errors=True)
    note = f"{len(rows):,} rows in {len(files)} files (one per symbol-day), every column"
    return figure(
        SECTION, f"{dataset.name}: Parquet, compacted", "B/row", [size / len(rows)], note=note, target="<= 5"
    )
