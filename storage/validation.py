"""Check rows and Arrow tables against a dataset's schema before they reach the lake. No I/O."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from schemas.dataset import SOURCES, Dataset, Row
from storage.errors import SchemaMismatch


def table_from_rows(dataset: Dataset, rows: Sequence[Row]) -> pa.Table:
    """Build an Arrow table in the dataset's schema; raise SchemaMismatch naming the bad columns.

    A missing nullable column is null; an unknown column, a wrong type or a null in a required column
    is an error, so a converter bug never lands silently.
    """
    schema = dataset.schema
    names = set(schema.names)
    unknown = sorted(set().union(*rows) - names)  # every row's keys, gathered in C
    if unknown:
        raise SchemaMismatch(f"{dataset.name}: rows have columns not in the schema: {', '.join(unknown)}")
    try:
        table = pa.Table.from_pylist(list(rows), schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError):
        raise SchemaMismatch(_type_errors(dataset, rows)) from None
    return _checked(dataset, table)


def conform_table(dataset: Dataset, table: pa.Table) -> pa.Table:
    """Return `table` in the dataset's column order and types; raise SchemaMismatch naming bad columns.

    Types are cast only when the cast is safe (no overflow, no truncated timestamps).
    """
    schema = dataset.schema
    unknown = sorted(set(table.column_names) - set(schema.names))
    if unknown:
        raise SchemaMismatch(f"{dataset.name}: table has columns not in the schema: {', '.join(unknown)}")
    columns: list[pa.ChunkedArray] = []
    bad: list[str] = []
    for field in schema:
        if field.name not in table.column_names:
            columns.append(pa.chunked_array([pa.nulls(table.num_rows, field.type)], field.type))
            continue
        column = table[field.name]
        try:
            columns.append(column if column.type == field.type else column.cast(field.type, safe=True))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            bad.append(f"{field.name} ({column.type}, expected {field.type})")
    if bad:
        raise SchemaMismatch(f"{dataset.name}: columns with the wrong type: {'; '.join(bad)}")
    return _checked(dataset, pa.Table.from_arrays(columns, schema=schema))


def _checked(dataset: Dataset, table: pa.Table) -> pa.Table:
    """Reject nulls in required columns and sources the views do not rank."""
    nulls = [f.name for f in dataset.schema if not f.nullable and table[f.name].null_count]
    if nulls:
        raise SchemaMismatch(f"{dataset.name}: required columns are missing or null: {', '.join(nulls)}")
    known = pc.is_in(table["source"], value_set=pa.array(SOURCES))
    if table.num_rows and not pc.all(known).as_py():  # all() of no rows is null
        strange = sorted(set(pc.filter(table["source"], pc.invert(known)).to_pylist()))
        raise SchemaMismatch(f"{dataset.name}: column source must be one of {SOURCES}, got {strange}")
    return table


def _type_errors(dataset: Dataset, rows: Sequence[Row]) -> str:
    """Say which columns failed to convert, with the first reason for each."""
    bad = []
    for field in dataset.schema:
        try:
            pa.array([row.get(field.name) for row in rows], type=field.type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, TypeError, ValueError) as error:
            bad.append(f"{field.name} (expected {field.type}: {' '.join(str(error).split())})")
    return f"{dataset.name}: columns with the wrong type: {'; '.join(bad) or 'unknown'}"
