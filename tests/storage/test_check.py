"""One unreadable .parquet costs its own dataset only, and `bingx-recorder check` finds and quarantines it."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from cli import main
from schemas import DATASETS
from storage.check import QUARANTINE, unreadable_files
from storage.lake import Lake
from tests.storage.samples import T0

PRICE = {"symbol": "BTC-USDT", "event_time": T0, "last_price": 1.5, "received_at": T0, "source": "poll"}
EVENT = {"connection": "c1", "seq": 7, "event": "connect", "topic": None, "code": None, "detail": None}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A lake with one good last_prices file, one good stream_events file and two unreadable trades files."""
    lake = Lake(tmp_path / "lake")
    (good,) = lake.write(DATASETS["last_prices"], [PRICE])
    lake.write(DATASETS["stream_events"], [{**EVENT, "received_at": T0, "source": "stream"}])
    partition = tmp_path / "lake" / "trades" / "symbol=BTC-USDT" / "date=2024-06-01"
    partition.mkdir(parents=True)
    content = Path(good).read_bytes()
    (partition / "stream-copy.parquet").write_bytes(content[: len(content) // 2])  # a truncated copy
    (partition / "notes.parquet").write_text("not parquet at all\n")  # a stray file
    return tmp_path


def _cli(data_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--data-dir", str(data_dir), *args])
    return result.exit_code, result.output


def _bad(data_dir: Path) -> list[Path]:
    partition = data_dir / "lake" / "trades" / "symbol=BTC-USDT" / "date=2024-06-01"
    return [partition / "notes.parquet", partition / "stream-copy.parquet"]


def test_other_datasets_still_answer_when_one_holds_an_unreadable_file(data_dir: Path) -> None:
    assert _cli(data_dir, "sql", "--format", "csv", "SELECT last_price FROM last_prices") == (
        0,
        "last_price\n1.5\n",
    )
    assert _cli(data_dir, "sql", "--format", "csv", "SELECT seq FROM stream_events") == (0, "seq\n7\n")


def test_the_affected_dataset_names_the_file_and_the_fix_on_one_line(data_dir: Path) -> None:
    code, output = _cli(data_dir, "sql", "SELECT count(*) FROM trades")
    assert code == 1
    assert output.count("\n") == 1
    assert re.search(r"(notes|stream-copy)\.parquet", output)
    assert "bingx-recorder check" in output


def test_views_writes_every_readable_dataset_and_warns_about_the_other(data_dir: Path) -> None:
    database = data_dir / "bingx.duckdb"
    code, output = _cli(data_dir, "views", "--db", str(database))
    assert code == 0, output
    assert "last_prices" in output.splitlines()
    assert any("trades" in line and "bingx-recorder check" in line for line in output.splitlines())
    with duckdb.connect(str(database)) as con:
        assert con.execute("SELECT last_price FROM last_prices").fetchall() == [(1.5,)]


def test_check_dry_run_lists_each_unreadable_file_on_one_line_and_moves_nothing(data_dir: Path) -> None:
    code, output = _cli(data_dir, "check", "--dry-run")
    assert code == 3
    lines = output.splitlines()
    assert [line for line in lines if line.startswith("unreadable: ")] == lines[:2]
    assert lines[2:] == ["check: 2 unreadable file(s) listed (--dry-run: nothing moved)"]
    assert all(str(path) in output for path in _bad(data_dir))
    assert all(path.exists() for path in _bad(data_dir))
    assert [path for path, _ in unreadable_files(data_dir / "lake")] == _bad(data_dir)


def test_check_quarantines_unreadable_files_out_of_the_views_reach(data_dir: Path) -> None:
    code, output = _cli(data_dir, "check")
    assert code == 3, output
    for path in _bad(data_dir):
        assert not path.exists()
        moved = data_dir / "lake" / QUARANTINE / path.relative_to(data_dir / "lake")
        assert moved.exists(), output
        assert str(moved) in output
    assert _cli(data_dir, "sql", "--format", "csv", "SELECT count(*) AS n FROM trades") == (0, "n\n0\n")
    assert _cli(data_dir, "check") == (
        0,
        f"check: every .parquet file under {data_dir / 'lake'} is readable\n",
    )


def test_check_finds_a_truncated_file_beside_good_ones_in_the_same_dataset(tmp_path: Path) -> None:
    lake = Lake(tmp_path / "lake")
    (good,) = lake.write(DATASETS["last_prices"], [PRICE])
    broken = Path(good).with_name("poll-broken.parquet")
    broken.write_bytes(Path(good).read_bytes()[:-10])
    assert [path for path, _ in unreadable_files(tmp_path / "lake")] == [broken]
    code, output = _cli(tmp_path, "check")
    assert code == 3, output
    assert _cli(tmp_path, "sql", "--format", "csv", "SELECT last_price FROM last_prices") == (
        0,
        "last_price\n1.5\n",
    )


def test_check_of_a_missing_data_dir_is_one_line(tmp_path: Path) -> None:
    code, output = _cli(tmp_path / "nope", "check")
    assert code == 1
    assert output.startswith("Error: ") and output.count("\n") == 1
    assert "does not exist" in output


def test_deep_also_finds_a_broken_page_behind_a_good_footer(tmp_path: Path) -> None:
    (good,) = Lake(tmp_path / "lake").write(DATASETS["last_prices"], [PRICE])
    offset = pq.ParquetFile(good).metadata.row_group(0).column(0).data_page_offset
    content = bytearray(Path(good).read_bytes())
    content[offset : offset + 8] = b"\xff" * 8  # the first page header no longer parses
    Path(good).write_bytes(bytes(content))
    assert unreadable_files(tmp_path / "lake") == []  # the footer alone looks fine
    (found,) = unreadable_files(tmp_path / "lake", deep=True)
    assert found[0] == Path(good) and found[1].isprintable()
    code, output = _cli(tmp_path, "check", "--deep", "--dry-run")
    assert code == 3 and good in output, output
