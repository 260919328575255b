"""What reached the lake: data frames in raw_messages, and how long each took to become visible."""

from __future__ import annotations

import os
from pathlib import Path


def frames(lake: Path, since_us: float = 0.0, until_us: float = float("inf")) -> tuple[int, list[float], str]:
    """Count data frames (rows with a topic) in raw_messages; file mtime minus received_at (ms) of rows
    received from `since_us` on.
    """
    import duckdb
    import pyarrow.compute as pc

    files = sorted(lake.glob("raw_messages/**/*.parquet"))
    if not files:
        return 0, [], "no raw_messages files landed"
    con = duckdb.connect()
    try:
        glob = str(lake / "raw_messages" / "**" / "*.parquet").replace("'", "''")
        table = con.sql(
            "SELECT filename, epoch_us(received_at) AS us, topic, connection, seq "
            f"FROM read_parquet('{glob}', filename = true)"
        ).to_arrow_table()
    finally:
        con.close()
    data = table.filter(pc.and_(pc.is_valid(table["topic"]), pc.less(table["us"], until_us)))
    # at-least-once: a restart may convert a journal stretch again; a frame is one (connection, seq)
    distinct = data.group_by(["connection", "seq"]).aggregate([]).num_rows
    # A file appears atomically under its final name right after it is written (storage.lake), so its
    # mtime is when its rows became visible to the views, to within the fsync and rename.
    mtimes = {str(path): os.stat(path).st_mtime_ns // 1000 for path in files}
    visible = [
        (mtimes[name] - us) / 1000
        for name, us in zip(data["filename"].to_pylist(), data["us"].to_pylist(), strict=True)
        if us >= since_us
    ]
    return distinct, visible, ""
