"""Every registered dataset: an empty view with its declared columns, exact round-trip, no double counting."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from schemas import DATASETS
from schemas.dataset import Dataset, Row
from storage.lake import Lake
from storage.views import connect, duckdb_type
from tests.storage.samples import T0

REGISTERED = sorted(DATASETS)


def _value(field: pa.Field, n: int) -> Any:
    """A plausible, exactly representable value of the field's type; `n` varies it."""
    kind = field.type
    if field.name == "interval":
        return "1m"
    if field.name == "symbol":
        return "BTC-USDT"
    if pa.types.is_timestamp(kind):
        return T0 + timedelta(seconds=n)
    if pa.types.is_floating(kind):
        return 0.1 + n
    if pa.types.is_integer(kind):
        return 3 + n
    if pa.types.is_boolean(kind):
        return n % 2 == 1
    if pa.types.is_list(kind):
        return [0.1 + n, 12345.678901234]
    return f"{field.name}-{n}"


def _row(dataset: Dataset, n: int) -> Row:
    row = {field.name: _value(field, n) for field in dataset.fields}
    return {**row, "received_at": T0 + timedelta(seconds=n, microseconds=250), "source": "stream"}


def _view(con: Any, name: str) -> list[dict[str, Any]]:
    return con.sql(f'SELECT * FROM "{name}" ORDER BY ALL').to_arrow_table().to_pylist()  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", REGISTERED)
def test_an_empty_lake_has_the_view_with_the_declared_columns(lake: Path, name: str) -> None:
    dataset = DATASETS[name]
    with connect(lake) as con:
        described = con.execute(f'DESCRIBE "{name}"').fetchall()
        assert con.execute(f'SELECT count(*) FROM "{name}"').fetchall() == [(0,)]
    declared = [(field.name, duckdb_type(field.type)) for field in dataset.schema] + [("date", "DATE")]
    columns = [
        (column, kind.replace("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ")) for column, kind, *_ in described
    ]
    assert columns[: len(declared)] == declared
    assert len(columns) == len(declared) + len(dataset.view_columns)


@pytest.mark.parametrize("name", REGISTERED)
def test_rows_round_trip_through_the_view_and_a_second_write_adds_nothing(lake: Path, name: str) -> None:
    dataset = DATASETS[name]
    rows = [_row(dataset, n) for n in range(3)]
    Lake(lake).write(dataset, rows)
    with connect(lake) as con:
        first = _view(con, name)
        Lake(lake).write(dataset, rows)
        assert _view(con, name) == first
    assert len(first) == 3
    for row, stored in zip(rows, first, strict=True):
        assert {column: stored[column] for column in row} == row
        assert stored["date"] == row[dataset.event_time].date()
