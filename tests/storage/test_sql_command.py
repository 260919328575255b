"""`bingx-recorder sql` and `bingx-recorder views`, through click's runner on temporary data dirs."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from cli import main
from schemas import DATASETS
from storage.lake import Lake
from tests.storage.samples import T0

VALUES = (
    "SELECT 1 AS n, 'a,b' AS text, NULL::VARCHAR AS missing, 0.1::DOUBLE + 0.2::DOUBLE AS sum, 1.10 AS dec, "
    "[1.5, 2.0]::DOUBLE[] AS prices, "
    "TIMESTAMPTZ '2024-06-01 23:58:00.123+00' AS at, DATE '2024-06-02' AS day, true AS ok"
)


def _sql(data_dir: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--data-dir", str(data_dir), "sql", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_sql_on_an_empty_data_dir_returns_no_rows_for_every_view(tmp_path: Path, name: str) -> None:
    (tmp_path / "data").mkdir()  # exists, nothing recorded yet (a missing one is an error)
    code, output = _sql(tmp_path / "data", "--format", "json", f'SELECT * FROM "{name}"')
    assert (code, output) == (0, "")
    code, output = _sql(tmp_path / "data", "--format", "csv", f'SELECT * FROM "{name}"')
    assert code == 0
    assert output.splitlines() == [",".join([*DATASETS[name].columns, "date", *_extra(name)])]


def _extra(name: str) -> list[str]:
    return [expression.rsplit(" AS ", 1)[1].strip() for expression in DATASETS[name].view_columns]


def test_bad_sql_prints_duckdb_message_on_one_line_and_exits_1(tmp_path: Path) -> None:
    code, output = _sql(tmp_path, "SELEC count(*) FROM trades")
    assert code == 1
    assert output.startswith('Error: Parser Error: syntax error at or near "SELEC"')
    assert output.count("\n") == 1


def test_an_unknown_table_is_one_line_too(tmp_path: Path) -> None:
    code, output = _sql(tmp_path, "SELECT * FROM no_such_dataset")
    assert code == 1
    assert output.startswith("Error: Catalog Error: Table with name no_such_dataset does not exist!")
    assert output.count("\n") == 1


def test_csv_output_is_exact(tmp_path: Path) -> None:
    code, output = _sql(tmp_path, "--format", "csv", VALUES)
    assert code == 0
    assert output == (
        "n,text,missing,sum,dec,prices,at,day,ok\n"
        '1,"a,b",,0.30000000000000004,1.10,"[1.5, 2.0]",2024-06-01T23:58:00.123000+00:00,2024-06-02,true\n'
    )


def test_json_output_is_one_object_per_line(tmp_path: Path) -> None:
    code, output = _sql(
        tmp_path, "--format", "json", f"{VALUES} UNION ALL {VALUES.replace('1 AS n', '2 AS n')}"
    )
    assert code == 0
    line = (
        '"text":"a,b","missing":null,"sum":0.30000000000000004,"dec":1.10,"prices":[1.5,2.0],'
        '"at":"2024-06-01T23:58:00.123000+00:00","day":"2024-06-02","ok":true}\n'
    )
    assert output == '{"n":1,' + line + '{"n":2,' + line


def test_table_output_shows_the_rows_and_their_types(tmp_path: Path) -> None:
    code, output = _sql(tmp_path, "SELECT 42 AS answer, 'x' AS \"open\"")
    assert code == 0
    assert "answer" in output and "open" in output and "int32" in output and "42" in output


def test_sql_sees_rows_in_the_lake_with_precedence(tmp_path: Path) -> None:
    klines = DATASETS["klines"]
    bar = {"symbol": "BTC-USDT", "interval": "1m", "open_time": T0, "open": 1.0, "high": 2.0, "low": 0.5}
    bar |= {"close": 1.5, "volume": 10.0, "received_at": T0, "source": "stream"}
    Lake(tmp_path / "lake").write(klines, [bar, {**bar, "close": 1.25, "source": "backfill"}])
    code, output = _sql(tmp_path, "--format", "csv", "SELECT close, source FROM klines")
    assert (code, output) == (0, "close,source\n1.25,backfill\n")


def test_views_writes_a_duckdb_file_whose_views_see_later_files(tmp_path: Path) -> None:
    database = tmp_path / "bingx.duckdb"
    for _ in range(2):  # re-running replaces the views
        result = CliRunner().invoke(
            main, ["--data-dir", str(tmp_path / "data"), "views", "--db", str(database)]
        )
        assert result.exit_code == 0, result.output
        assert result.output.splitlines() == [*DATASETS, "stream_gaps"]
    row = {"connection": "c1", "seq": 7, "event": "connect", "topic": None, "code": None, "detail": None}
    Lake(tmp_path / "data" / "lake").write(
        DATASETS["stream_events"], [{**row, "received_at": T0, "source": "stream"}]
    )
    with duckdb.connect(str(database)) as con:
        assert con.execute("SELECT connection, seq, event FROM stream_events").fetchall() == [
            ("c1", 7, "connect")
        ]


def test_views_into_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["--data-dir", str(tmp_path), "views", "--db", str(tmp_path / "no" / "x.duckdb")]
    )
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot write views into {tmp_path / 'no' / 'x.duckdb'}:")
    assert result.output.count("\n") == 1


@pytest.mark.parametrize("command", ["sql", "views"])
def test_help_has_a_worked_example(command: str) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert re.search(r"Example:\n +bingx-recorder ", result.output)
