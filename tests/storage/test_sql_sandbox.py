"""`sql` is a boundary: read-only, the lake the only readable directory, unless --unsafe; one statement."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import fsspec
import pyarrow.fs as pafs
import pytest
from click.testing import CliRunner

from cli import main
from schemas import DATASETS
from storage.lake import Lake
from storage.results import QueryError
from storage.sandbox import check_query, lock_down
from storage.views import create_views
from tests.storage.samples import T0

PRICE = {"symbol": "BTC-USDT", "event_time": T0, "last_price": 1.5, "received_at": T0, "source": "poll"}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    Lake(tmp_path / "data" / "lake").write(DATASETS["last_prices"], [PRICE])
    (tmp_path / "secret.txt").write_text("hunter2\n")
    return tmp_path / "data"


def _sql(data_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--data-dir", str(data_dir), "sql", *args])
    return result.exit_code, result.output


def _refused(data_dir: Path, query: str, *words: str) -> str:
    code, output = _sql(data_dir, query)
    assert code == 1, output
    assert output.startswith("Error: ") and output.count("\n") == 1, output
    for word in words:
        assert word in output
    return output


def test_reading_a_file_outside_the_lake_is_refused_and_unsafe_lifts_it(data_dir: Path) -> None:
    secret = data_dir.parent / "secret.txt"
    query = f"SELECT content FROM read_text('{secret}')"
    output = _refused(data_dir, query, "--unsafe")
    assert "hunter2" not in output
    assert _refused(data_dir, f"SELECT content FROM read_text('{data_dir}/lake/../../secret.txt')")
    assert _sql(data_dir, "--unsafe", "--format", "csv", query) == (0, 'content\n"hunter2\n"\n')


def test_the_lake_itself_stays_readable_through_views_and_read_parquet(data_dir: Path) -> None:
    assert _sql(data_dir, "--format", "csv", "SELECT last_price FROM last_prices") == (0, "last_price\n1.5\n")
    glob = f"{data_dir}/lake/last_prices/**/*.parquet"
    assert _sql(data_dir, "--format", "csv", f"SELECT count(*) AS n FROM read_parquet('{glob}')") == (
        0,
        "n\n1\n",
    )


@pytest.mark.parametrize(
    "statement",
    [
        "COPY (SELECT 1) TO '{lake}/copied.csv'",
        "COPY (SELECT 1) TO '{outside}/copied.csv'",
        "CREATE TABLE t AS SELECT 1",
        "DROP VIEW trades",
        "ATTACH ':memory:' AS other",
        "ATTACH '{outside}/other.duckdb' AS other",
        "SET enable_external_access = true",
        "INSTALL httpfs",
    ],
)
def test_statements_that_write_or_change_settings_are_refused(data_dir: Path, statement: str) -> None:
    query = statement.format(lake=data_dir / "lake", outside=data_dir.parent)
    _refused(data_dir, query, "--unsafe")
    assert not (data_dir / "lake" / "copied.csv").exists()
    assert not (data_dir.parent / "copied.csv").exists()
    assert not (data_dir.parent / "other.duckdb").exists()


def test_unsafe_runs_a_write_outside_the_lake(data_dir: Path) -> None:
    target = data_dir.parent / "copied.csv"
    code, output = _sql(data_dir, "--unsafe", f"COPY (SELECT 1 AS n) TO '{target}'")
    assert code == 0, output
    assert target.read_text() == "n\n1\n"


def test_several_statements_are_refused_with_one_line(data_dir: Path) -> None:
    _refused(data_dir, "SELECT 1; SELECT 2", "one statement", "2")


def test_sql_on_a_data_dir_that_does_not_exist_says_so(tmp_path: Path) -> None:
    _refused(tmp_path / "typo", "SELECT count(*) FROM trades", "does not exist", str(tmp_path / "typo"))


@pytest.mark.parametrize("rows", ["-1", "0"])
def test_max_rows_below_one_is_a_usage_error(data_dir: Path, rows: str) -> None:
    result = CliRunner().invoke(main, ["--data-dir", str(data_dir), "sql", "--max-rows", rows, "SELECT 1"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    assert [line for line in result.output.splitlines() if line.startswith("Error:")] == [
        line for line in result.output.splitlines() if "--max-rows" in line and line.startswith("Error:")
    ]


def test_help_documents_the_boundary_and_unsafe() -> None:
    output = CliRunner().invoke(main, ["sql", "--help"]).output
    assert "--unsafe" in output and "read-only" in output


@pytest.fixture
def memory_root() -> Iterator[str]:
    root = f"/lake-{uuid.uuid4().hex}"  # fsspec's memory filesystem is one per process: a unique root
    memory = fsspec.filesystem("memory")
    yield root
    memory.rm(root, recursive=True)


def test_a_lake_on_an_fsspec_filesystem_stays_readable_and_nothing_else_is(memory_root: str) -> None:
    memory = fsspec.filesystem("memory")
    Lake(memory_root, pafs.PyFileSystem(pafs.FSSpecHandler(memory))).write(DATASETS["last_prices"], [PRICE])
    memory.pipe(f"{memory_root}-secret/x.txt", b"hunter2")
    con = duckdb.connect()
    try:
        con.register_filesystem(memory)
        create_views(con, f"memory://{memory_root.lstrip('/')}")
        lock_down(con, f"memory://{memory_root.lstrip('/')}")
        assert con.sql("SELECT last_price FROM last_prices").fetchall() == [(1.5,)]
        assert con.sql("SELECT count(*) FROM trades").fetchall() == [(0,)]
        for spelling in ("memory://", "memory:///"):
            with pytest.raises(duckdb.PermissionException):
                con.sql(f"SELECT * FROM read_text('{spelling}{memory_root.lstrip('/')}-secret/x.txt')")
        with pytest.raises(duckdb.Error):
            con.execute("SET allowed_directories = ['/']")
    finally:
        con.close()
        memory.rm(f"{memory_root}-secret", recursive=True)


def test_check_query_lets_select_explain_and_describe_through() -> None:
    con = duckdb.connect()
    try:
        for query in (
            "SELECT 1",
            "FROM (VALUES (1))",
            "EXPLAIN SELECT 1",
            "DESCRIBE SELECT 1",
            "SHOW TABLES",
        ):
            check_query(con, query, read_only=True)
        with pytest.raises(QueryError, match="read-only"):
            check_query(con, "EXPLAIN ANALYZE CREATE TABLE t AS SELECT 1", read_only=True)
        check_query(con, "CREATE TABLE t AS SELECT 1", read_only=False)
    finally:
        con.close()
