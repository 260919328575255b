"""Run one SQL string over the lake's views and render the result as a table, CSV or JSON Lines."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TextIO

import duckdb
import orjson

FORMATS = ("table", "csv", "json")
_BATCH_ROWS = 10_000


class QueryError(Exception):
    """DuckDB refused or failed the query; the message is DuckDB's first line."""


def run(con: duckdb.DuckDBPyConnection, query: str, out: TextIO, output_format: str, max_rows: int) -> None:
    """Execute `query` and write its result to `out`; a statement without a result writes nothing.

    csv: a header, then one line per row (NULL is empty, lists are JSON arrays, times ISO 8601).
    json: JSON Lines, one object per row. table: DuckDB's box rendering, at most `max_rows` rows.
    Raises QueryError with DuckDB's message on one line.
    """
    try:
        relation = con.sql(query)
        if relation is None:
            return
        if output_format == "table":
            out.write(_table(relation, max_rows))
        elif output_format == "csv":
            _write_csv(relation, out)
        elif output_format == "json":
            _write_json_lines(relation, out)
        else:
            raise ValueError(f"unknown format {output_format!r}; use one of {FORMATS}")
    except duckdb.Error as error:
        raise QueryError(_first_line(str(error))) from None


def _table(relation: duckdb.DuckDBPyRelation, max_rows: int) -> str:
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):  # DuckDB's renderer prints; capture it to honour `out`
        relation.show(max_rows=max_rows)
    return buffer.getvalue()


def _rows(relation: duckdb.DuckDBPyRelation) -> Iterator[dict[str, Any]]:
    # Through Arrow: fetchall() of TIMESTAMPTZ needs pytz (STYLE.md), Arrow does not.
    reader = relation.to_arrow_reader(_BATCH_ROWS)
    for batch in reader:
        yield from batch.to_pylist()


def _write_csv(relation: duckdb.DuckDBPyRelation, out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(relation.columns)
    for row in _rows(relation):
        writer.writerow([_csv_cell(value) for value in row.values()])


def _write_json_lines(relation: duckdb.DuckDBPyRelation, out: TextIO) -> None:
    for row in _rows(relation):
        out.write(orjson.dumps(row, default=_json_default).decode())
        out.write("\n")


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)  # the shortest text that reads back as the same float64
    if isinstance(value, list | dict):
        return json.dumps(value, default=_json_default)
    return str(value)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))  # a JSON number with exactly DuckDB's digits
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "query failed"
