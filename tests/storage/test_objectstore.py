"""The lake on a real local S3 server (moto): the same seeded lake written locally and to a bucket gives
the same views before and after compaction; nothing half-written becomes an object; one lease holder."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import boto3
import pytest

from schemas import DATASETS
from storage.compact import compact
from storage.errors import LeaseHeld
from storage.lake import Lake
from storage.lease import Lease
from storage.rebuild import rebuild
from storage.retention import prune
from storage.validation import table_from_rows
from storage.views import connect
from tests.storage.lakes import KLINES, TRADES, build, trades
from tests.storage.test_rebuild import _frames, _record, _wrong

SEED = 20261202


def _keys(uri: str) -> list[str]:
    bucket = uri.removeprefix("s3://").split("/", 1)[0]
    listed = boto3.client("s3").list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listed.get("Contents", [])]


def _view(root: str, name: str) -> list[tuple[object, ...]]:
    """Every row of one view, sorted (only that view created: on S3 each view lists its globs)."""
    with connect(root, datasets=[DATASETS[name]]) as con:
        return sorted(
            (tuple(row.values()) for row in con.sql(f"SELECT * FROM {name}").to_arrow_table().to_pylist()),
            key=repr,
        )


@pytest.mark.slow
def test_a_lake_on_s3_shows_what_the_same_lake_on_disk_shows_before_and_after_compaction(
    tmp_path: Path, s3_lake: str
) -> None:
    local = build(tmp_path / "lake", SEED, days=2, seals=2)
    remote = build(Lake.from_uri(s3_lake), SEED, days=2, seals=2)
    assert remote.root == s3_lake and all(path.startswith("s3://") for path in remote.files("trades"))
    for name in ("trades", "klines"):
        assert _view(s3_lake, name) == _view(local.root, name), f"seed {SEED}: {name} differs"
    compact(local, [TRADES, KLINES], date(2024, 6, 3), grace_s=0)
    summary = compact(remote, [TRADES, KLINES], date(2024, 6, 3), grace_s=0)
    assert summary.rows > 0 and summary.files_removed > 0
    files = remote.files("trades")
    assert files and all(path.rsplit("/", 1)[1].startswith("compacted-") for path in files)
    for name in ("trades", "klines"):
        assert _view(s3_lake, name) == _view(local.root, name), f"seed {SEED}: {name} differs"
    keys = _keys(s3_lake)
    assert not [key for key in keys if key.endswith(".partial")]
    assert not [key for key in keys if "/_compaction/" in key]  # manifests and lease gone


def test_a_failed_write_leaves_no_object_in_the_bucket(s3_lake: str) -> None:
    lake = Lake.from_uri(s3_lake)
    rows = table_from_rows(TRADES, trades(random.Random(SEED), 0, 10, 0))
    with pytest.raises(RuntimeError, match="killed mid-seal"), lake.batch(combined=True) as batch:
        batch.append(TRADES, rows)
        batch._write("trades", last=False)  # a row group is in the spool file: the object must not appear
        raise RuntimeError("killed mid-seal")
    assert _keys(s3_lake) == []
    assert lake.write(TRADES, rows.to_pylist(), combined=True) and len(_keys(s3_lake)) == 1


def test_the_lease_on_s3_has_one_holder(s3_lake: str) -> None:
    lake = Lake.from_uri(s3_lake)
    with Lease(lake), pytest.raises(LeaseHeld, match="holds the maintenance lease"):
        Lease(Lake.from_uri(s3_lake)).acquire()
    with Lease(lake):  # released: free again
        pass


def test_every_registry_view_reads_an_empty_lake_on_s3(s3_lake: str) -> None:
    with connect(s3_lake) as con:
        for name in DATASETS:
            assert con.sql(f"SELECT count(*) FROM {name}").fetchall() == [(0,)]


def test_rebuild_and_prune_work_on_s3(tmp_path: Path, s3_lake: str) -> None:
    frames = _frames(random.Random(SEED))
    assert TRADES.from_stream is not None
    right = _record(tmp_path / "right", frames, TRADES.from_stream)
    lake = _record(Lake.from_uri(s3_lake), frames, _wrong)
    assert _view(s3_lake, "trades") != _view(right.root, "trades")
    done = rebuild(lake, TRADES, date(2024, 6, 1), date(2024, 6, 2), grace_s=0)
    assert done.derived > 0 and _view(s3_lake, "trades") == _view(right.root, "trades"), f"seed {SEED}"
    pruned = prune(lake, keep_raw_days=7, today=date(2024, 6, 30))
    assert pruned.paths and not lake.files("raw_messages")
    assert _view(s3_lake, "trades") == _view(right.root, "trades")  # normalized data untouched


def test_the_flat_listing_globs_what_a_folder_walk_globs(s3_lake: str) -> None:
    import s3fs

    lake = build(Lake.from_uri(s3_lake), SEED, days=2, seals=1)
    walking = s3fs.S3FileSystem(use_listings_cache=False, skip_instance_cache=True)
    patterns = [
        *lake.globs(TRADES),
        *lake.globs(KLINES),
        f"{lake.root}/klines/symbol=*/interval=*/date=*/[!c]*.parquet",
        f"{lake.root}/trades/**/*.parquet",
        f"{lake.root}/trades/*",
        f"{lake.root}/nothing/*/*.parquet",
    ]
    for pattern in patterns:
        assert lake.store.glob(pattern) == walking.glob(pattern), pattern
    assert sum(len(lake.store.glob(pattern)) for pattern in patterns) > 20
