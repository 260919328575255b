"""What `sql` may do: one statement, read-only unless --unsafe, and no file outside the lake readable.

Verified against DuckDB 2.0.1: with `enable_external_access = false` and the lake in `allowed_directories`,
reading any other path (read_text, read_parquet, glob, `lake/../x`), COPY ... TO outside, ATTACH of a file,
INSTALL and LOAD all fail with a PermissionException, and `lock_configuration = true` stops a query from
turning that off. COPY ... TO inside the lake, CREATE, DROP and ATTACH ':memory:' still work there, so the
statement's type is checked too: only SELECT-like statements and EXPLAIN of them pass.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from storage.results import QueryError

_READS = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})
_EXPLAIN = re.compile(r"\s*explain(\s+analy[sz]e)?\s", re.IGNORECASE)


def allowed_directories(root: str | Path) -> list[str]:
    """Spell the lake directory the ways DuckDB checks it; each ends in "/" so `lake2/` is not inside.

    On a registered fsspec filesystem DuckDB 2.0.1 checks globs as `memory://lake/...` but the files they
    expand to as `memory:///lake/...`: both spellings are needed.
    """
    text = str(root)
    if "://" not in text:
        return [Path(text).absolute().as_posix().rstrip("/") + "/"]
    scheme, _, path = text.partition("://")
    path = path.strip("/")
    return [f"{scheme}://{path}/", f"{scheme}:///{path}/"]


def lock_down(con: duckdb.DuckDBPyConnection, root: str | Path) -> None:
    """Make the lake the only directory `con` can read, and lock the settings so no query can undo it."""
    directories = ", ".join(_literal(directory) for directory in allowed_directories(root))
    con.execute(f"SET allowed_directories = [{directories}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def check_query(con: duckdb.DuckDBPyConnection, query: str, read_only: bool) -> None:
    """Refuse more than one statement, and (read_only) any statement that is not a read.

    Raises QueryError with one line; a syntax error is DuckDB's own message.
    """
    try:
        statements = con.extract_statements(query)
    except duckdb.Error as error:
        raise QueryError(_first_line(str(error))) from None
    if len(statements) != 1:
        raise QueryError(
            f"sql runs one statement at a time, got {len(statements)}: run each on its own "
            "(a subquery or a WITH clause combines them into one)"
        )
    if read_only and not _is_read(con, statements[0]):
        kind = statements[0].type.name
        raise QueryError(
            f"sql is read-only: a {kind} statement is refused; only SELECT, DESCRIBE, SHOW and EXPLAIN run "
            "(--unsafe lifts this and the lake-only file access)"
        )


def _is_read(con: duckdb.DuckDBPyConnection, statement: duckdb.Statement) -> bool:
    if statement.type not in _READS:
        return False
    if statement.type == duckdb.StatementType.SELECT:
        return True
    prefix = _EXPLAIN.match(statement.query)  # EXPLAIN ANALYZE runs what it explains: check that one
    if prefix is None:
        return False
    try:
        inner = con.extract_statements(statement.query[prefix.end() :])
    except duckdb.Error:
        return False
    return len(inner) == 1 and inner[0].type == duckdb.StatementType.SELECT


def _first_line(message: str) -> str:
    return message.strip().splitlines()[0] if message.strip() else "query failed"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
