"""DuckDB views over the lake, one per dataset, deduplicated on read. Reads files; never writes them.

Precedence (DESIGN.md "Dedupe on read"): one row per key; sources rank as schemas.dataset.SOURCES
(backfill, then poll, then stream), then the latest received_at wins. Datasets with `occurrence` (trades)
keep equal-looking rows as separate facts: they are numbered n = 1, 2, ... per (key, source), copies of
one fact (same replay_key in that source) sharing their n, and one row per (key, n) is kept by precedence.

Compacted partitions (storage.layout) already hold exactly the kept rows: a partition with no other file
is read as it is, without a window. Of a partition's compacted files only the one with the greatest name
counts (compaction and rebuild name them by generation), so a new one replaces the old in one rename.
Only partitions that also have fresh files (late rows, a compaction within its grace period) pay for the
dedupe, over everything they hold, their superseded rows included (the occurrence numbering needs the
whole set), which gives the same answer as before compaction.

A query's fixed cost is its file listings: one glob() (which partitions are clean) and one per reference
to a scan (a partition's fresh and superseded files, the files of every symbol, the compacted files).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from schemas import DATASETS
from schemas.dataset import SOURCES, Dataset
from storage import layout
from storage.objectstore import register_filesystems

_BROKEN = "unreadable: "  # the comment that marks a placeholder view (broken_views)
# What DuckDB raises for a truncated or stray .parquet when a view binds its files (checked on 2.0.1)
_UNREADABLE = (duckdb.IOException, duckdb.InvalidInputException)
_ERROR_CLASS = re.compile(r"^[A-Za-z ]*Error: ")

_SCAN = (
    "read_parquet({glob}, hive_partitioning = true, hive_types = {{{hive_types}}}, "
    "union_by_name = {by_name}, allow_empty = true)"
)
# The typed empty branch fixes names and types, even before the first file exists (DuckDB would then infer
# none); columns a file lacks (an older file, a newer nullable column) read as NULL.
_ROWS = """    SELECT {columns} FROM (
        SELECT {typed} WHERE false
        UNION ALL BY NAME
        SELECT * FROM {scan}
    )"""
_LATEST = """ranked AS (
    SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY {precedence}) AS __rank FROM lake_rows
)"""
# Equal-looking trades are separate facts, numbered n = 1, 2, ... per (key, source); copies of one fact
# (same replay_key: a replayed frame, a re-run page) are peers in the ranking, so they share their n.
_OCCURRENCES = """numbered AS (
    SELECT *, dense_rank() OVER (PARTITION BY {key}, source ORDER BY {replay}, {whole_row}) AS n
    FROM (SELECT *, {by_row} AS by_row FROM lake_rows)
),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY {key}, n ORDER BY {precedence}) AS __rank FROM numbered
)"""
# How a partition's rows are read, decided by one glob() listing: `clean` when it has compacted files only
# (no fresh or superseded file, no file of its day holding every symbol), read as they are; every other row
# goes through the dedupe. Each reference to a scan lists the files anew, and a writer can come between two
# listings (in either order), so no answer may depend on two of them agreeing: a clean partition with one
# compacted file reads just that file (a second one the scan found, or the one about to go, adds nothing),
# and anywhere else a partition's compacted rows are those of the greatest name its own scan found.
_VIEW = """CREATE OR REPLACE VIEW {name} AS
WITH listed AS MATERIALIZED (
    SELECT file, {extracts}, CAST(regexp_extract(rel, 'date=([^/]+)/[^/]+$', 1) AS DATE) AS "date",
        starts_with(parse_filename(rel), '{compacted}-') AS is_packed, {is_combined} AS is_combined
    FROM (SELECT file, substr(file, {offset}) AS rel FROM glob({listing}))
),
partitions AS (
    SELECT {places}, count(*) AS files, max(file) AS file, bool_and(is_packed)
        AND "date" NOT IN (SELECT "date" FROM listed WHERE is_combined) AS is_clean
    FROM listed WHERE NOT is_combined GROUP BY {places}
),
clean AS (
    SELECT {places} FROM partitions WHERE is_clean
),
unclean AS (
    SELECT {places} FROM partitions WHERE NOT is_clean
),
fresh AS (
{fresh}
),
combined AS (
{combined}
),
packed AS NOT MATERIALIZED (
{packed}
),
lake_rows AS (
    SELECT * FROM fresh SEMI JOIN unclean USING ({places})
    UNION ALL SELECT * FROM combined ANTI JOIN clean USING ({places})
    UNION ALL {latest_unclean}
),
{body}
SELECT {columns}{extra} FROM (
    SELECT {columns} FROM packed WHERE filename IN (SELECT file FROM partitions WHERE is_clean AND files = 1)
    UNION ALL
    SELECT {columns} FROM ({latest_several})
    UNION ALL
    SELECT {columns} FROM ranked WHERE __rank = 1
)"""
# A partition's rows of the greatest compacted file one scan found, for the partitions `chosen` names.
_LATEST_PACKED = """SELECT * EXCLUDE (filename, __latest) FROM (
        SELECT *, max(filename) OVER (PARTITION BY {places}) AS __latest
        FROM packed SEMI JOIN ({chosen}) USING ({places})
    ) WHERE filename = __latest"""


def connect(
    root: str | Path, database: str = ":memory:", datasets: Iterable[Dataset] | None = None
) -> duckdb.DuckDBPyConnection:
    """Open DuckDB (UTC session time zone) with a view for every dataset of the lake at `root`."""
    con = duckdb.connect(database)
    try:
        con.execute("SET TimeZone = 'UTC'")
        register_filesystems(con, str(root))  # a lake on an object store (storage.objectstore)
        create_views(con, root, datasets)
    except BaseException:
        con.close()
        raise
    return con


def create_views(
    con: duckdb.DuckDBPyConnection, root: str | Path, datasets: Iterable[Dataset] | None = None
) -> list[str]:
    """Create or replace one view per dataset (default: the registry); return their names.

    A dataset without files is an empty view with the right columns. Views read the glob at query time,
    so files written later appear without recreating them.
    """
    names = []
    for dataset in DATASETS.values() if datasets is None else datasets:
        try:
            con.execute(view_sql(dataset, root))
        except _UNREADABLE as error:  # an unreadable file costs its own dataset, not every view
            con.execute(broken_view_sql(dataset, unreadable_message(dataset, str(error))))
        names.append(dataset.name)
    return names + _create_derived_views(con, names)


def _create_derived_views(con: duckdb.DuckDBPyConnection, names: list[str]) -> list[str]:
    """Views over other views (storage.gaps: stream_gaps), created when what they read exists."""
    from storage.gaps import create_gap_view

    return create_gap_view(con, names)


def broken_views(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Return {view: message} for the views create_views had to replace with a failing placeholder."""
    rows = con.execute(
        "SELECT view_name, comment FROM duckdb_views() WHERE comment LIKE ?", [_BROKEN + "%"]
    ).fetchall()
    return {name: comment.removeprefix(_BROKEN) for name, comment in rows}


def unreadable_message(dataset: Dataset, error: str) -> str:
    """Say, on one line, which file of `dataset` DuckDB could not read and what to do about it."""
    detail = _ERROR_CLASS.sub("", error.strip().splitlines()[0]) if error.strip() else "a file is unreadable"
    return (
        f"{dataset.name}: {detail}; run `bingx-recorder check` to move unreadable files to the "
        "lake's _quarantine/ folder (then re-run `views` for a DuckDB file)"
    )


def broken_view_sql(dataset: Dataset, message: str) -> str:
    """A view with the dataset's columns that fails with `message` whenever it is read (DESCRIBE works)."""
    types = {field.name: duckdb_type(field.type) for field in dataset.schema}
    columns = ", ".join(
        f"CAST(unreadable AS {kind}) AS {_quoted(name)}" for name, kind in {**types, "date": "DATE"}.items()
    )
    name = _quoted(dataset.name)
    return (
        f"CREATE OR REPLACE VIEW {name} AS SELECT {columns}\n"
        f"FROM (SELECT error({_literal(message)}) AS unreadable) WHERE unreadable IS NULL;\n"
        f"COMMENT ON VIEW {name} IS {_literal(_BROKEN + message)}"
    )


def view_sql(dataset: Dataset, root: str | Path) -> str:
    """Return the CREATE OR REPLACE VIEW statement for one dataset over the lake at `root`."""
    base = _root(root)
    combined = layout.combined_glob(base, dataset)
    # A partition's fresh files and its superseded rows in one scan (the same hive keys): both count only
    # where the partition is touched (a fresh file always touches its own partition).
    fresh = _rows_sql(dataset, [*layout.fresh_globs(base, dataset), layout.superseded_glob(base, dataset)])
    # The files holding every symbol: their partitions are touched through the day, not the path.
    combined_rows = _rows_sql(dataset, [combined] if combined is not None else [], ())
    folder = f"{base}/{dataset.name}/"
    places = ", ".join(_quoted(name) for name in (*dataset.partitions, "date"))
    types = {field.name: duckdb_type(field.type) for field in dataset.schema}
    extracts = [
        f"CAST(regexp_extract(rel, '(^|/){column}=([^/]+)/', 2) AS {types[column]}) AS {_quoted(column)}"
        for column in dataset.partitions
    ]
    return _VIEW.format(
        name=_quoted(dataset.name),
        extracts=", ".join(extracts) or "NULL AS __none",
        compacted=layout.COMPACTED,
        is_combined="rel NOT LIKE '%=%/%=%'" if dataset.partitions else "false",
        offset=len(folder) + 1,
        listing=_literal(folder + "**/*.parquet"),
        fresh=fresh,
        combined=combined_rows,
        # Compacted files all carry the full schema (compaction writes every column), so their metadata
        # need not be read at bind time to unify names: a query opens only the files its filters keep.
        # One scan (NOT MATERIALIZED: bound once, its file list copied, never buffered) feeds both the
        # clean partitions and the latest compacted file of the touched ones.
        packed=_rows_sql(dataset, [layout.compacted_glob(base, dataset)], with_file=True, by_name=False),
        places=places,
        latest_unclean=_LATEST_PACKED.format(places=places, chosen="SELECT * FROM unclean"),
        latest_several=_LATEST_PACKED.format(
            places=places, chosen=f"SELECT {places} FROM partitions WHERE is_clean AND files > 1"
        ),
        body=ranked_body(dataset),
        columns=", ".join(_quoted(name) for name in (*dataset.columns, "date")),
        extra="".join(f",\n    {expression}" for expression in dataset.view_columns),
    )


def ranked_body(dataset: Dataset) -> str:
    """SQL defining `ranked` over `lake_rows`: every row with its `__rank`; the view keeps rank 1."""
    return _occurrence_body(dataset) if dataset.occurrence else _latest_body(dataset)


def rows_sql(dataset: Dataset, files: Sequence[str], hive_keys: Sequence[str] | None = None) -> str:
    """Select every row of the given files (or globs), typed as declared; `hive_keys` are in the paths."""
    return _rows_sql(dataset, files, hive_keys)


def duckdb_type(data_type: pa.DataType) -> str:
    """Name the DuckDB type that holds an Arrow type; TypeError for a type the lake does not use."""
    if pa.types.is_timestamp(data_type):
        return "TIMESTAMPTZ" if data_type.tz else "TIMESTAMP"
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
        return f"{duckdb_type(data_type.value_type)}[]"
    if pa.types.is_decimal(data_type):
        return f"DECIMAL({data_type.precision}, {data_type.scale})"
    for is_type, name in _SIMPLE_TYPES:
        if is_type(data_type):
            return name
    raise TypeError(f"no DuckDB type for Arrow {data_type}")


_SIMPLE_TYPES = (
    (pa.types.is_boolean, "BOOLEAN"),
    (pa.types.is_int8, "TINYINT"),
    (pa.types.is_int16, "SMALLINT"),
    (pa.types.is_int32, "INTEGER"),
    (pa.types.is_int64, "BIGINT"),
    (pa.types.is_uint8, "UTINYINT"),
    (pa.types.is_uint16, "USMALLINT"),
    (pa.types.is_uint32, "UINTEGER"),
    (pa.types.is_uint64, "UBIGINT"),
    (pa.types.is_float32, "FLOAT"),
    (pa.types.is_float64, "DOUBLE"),
    (pa.types.is_string, "VARCHAR"),
    (pa.types.is_large_string, "VARCHAR"),
    (pa.types.is_binary, "BLOB"),
    (pa.types.is_large_binary, "BLOB"),
    (pa.types.is_date32, "DATE"),
)


def _rows_sql(
    dataset: Dataset,
    globs: Sequence[str],
    hive_keys: Sequence[str] | None = None,
    with_file: bool = False,
    by_name: bool = True,
) -> str:
    """Select every row of the files the globs match, typed as declared (and each row's file path)."""
    types = {field.name: duckdb_type(field.type) for field in dataset.schema}
    types["date"] = "DATE"
    if with_file:
        types["filename"] = "VARCHAR"
    typed = ", ".join(f"CAST(NULL AS {kind}) AS {_quoted(name)}" for name, kind in types.items())
    keys = dataset.partitions if hive_keys is None else hive_keys
    hive_types = ", ".join(f"{_literal(name)}: {types[name]}" for name in (*keys, "date"))
    listed = "[" + ", ".join(_literal(glob) for glob in globs) + "]"
    scan = _SCAN.format(glob=listed, hive_types=hive_types, by_name=str(by_name).lower())
    if with_file:  # a column only where files exist: an empty glob has none, the typed branch gives it
        scan = scan.replace("allow_empty = true)", "allow_empty = true, filename = true)")
    columns = ", ".join(_quoted(name) for name in types)
    return _ROWS.format(columns=columns, typed=typed, scan=scan)


def _latest_body(dataset: Dataset) -> str:
    return _LATEST.format(key=_partition_key(dataset), precedence=_precedence())


def _occurrence_body(dataset: Dataset) -> str:
    replay_key = {source: columns for source, columns in (dataset.replay_key or {}).items() if columns}
    return _OCCURRENCES.format(
        by_row=_identified_by_row(replay_key),
        replay=", ".join(_replay_columns(replay_key)),
        whole_row=", ".join(
            f"CASE WHEN by_row THEN {_quoted(column)} END"
            for column in dataset.columns
            if column not in dataset.key
        ),
        key=_partition_key(dataset),
        precedence=_precedence(),
    )


def _replay_columns(replay_key: Mapping[str, tuple[str, ...]]) -> list[str]:
    """One expression per replay_key column: the column for sources that use it, NULL for the others."""
    users: dict[str, list[str]] = {}
    for source, columns in replay_key.items():
        for column in columns:
            users.setdefault(column, []).append(source)
    return [
        f"CASE WHEN source IN ({', '.join(map(_literal, sources))}) THEN {_quoted(column)} END"
        for column, sources in users.items()
    ] or ["NULL"]


def _identified_by_row(replay_key: Mapping[str, tuple[str, ...]]) -> str:
    """Say which rows only the whole row identifies: no replay_key, or a NULL in it (a trade without id).

    For those only exact copies collapse, never two different trades that share a NULL.
    """
    unkeyed = f"source NOT IN ({', '.join(map(_literal, replay_key))})" if replay_key else "true"
    incomplete = [
        f"(source = {_literal(source)} AND ({' OR '.join(f'{_quoted(c)} IS NULL' for c in columns)}))"
        for source, columns in replay_key.items()
    ]
    return " OR ".join([unkeyed, *incomplete])


def _partition_key(dataset: Dataset) -> str:
    # The day is a function of the event time: adding it changes nothing but lets date filters prune files.
    key = (*dataset.key, "date") if dataset.event_time in dataset.key else dataset.key
    return ", ".join(_quoted(column) for column in key)


def _precedence() -> str:
    ranks = " ".join(f"WHEN {_literal(source)} THEN {rank}" for rank, source in enumerate(SOURCES))
    return f"CASE source {ranks} ELSE {len(SOURCES)} END, received_at DESC"


def _root(root: str | Path) -> str:
    text = str(root)
    if "://" not in text:
        text = Path(text).absolute().as_posix()
    return text.rstrip("/")


def _quoted(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'  # "interval" and "open" are SQL keywords


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
