"""`bingx-recorder check`: find lake files no reader can open and move them out of the views' reach.

Local lakes only. A file is readable when its Parquet footer and schema parse (with `deep`, every row
group too); anything else (a truncated copy, a stray file named .parquet) is unreadable. Quarantined files
keep their path below `<lake>/_quarantine/`, which no view's glob (`<lake>/<dataset>/**`) reaches.
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

QUARANTINE = "_quarantine"


def unreadable_files(root: Path, deep: bool = False) -> list[tuple[Path, str]]:
    """Return (path, one-line reason) for every unreadable .parquet under `root`, sorted by path."""
    found = []
    for path in sorted(root.rglob("*.parquet")):
        if path.relative_to(root).parts[0] == QUARANTINE or not path.is_file():
            continue
        reason = _problem(path, deep)
        if reason is not None:
            found.append((path, reason))
    return found


def quarantine(root: Path, path: Path) -> Path:
    """Move `path` (under `root`) to the same place under `root/_quarantine/`; return where it went.

    A name already taken there gets a numbered suffix: nothing quarantined is ever overwritten.
    """
    target = root / QUARANTINE / path.relative_to(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    candidate, number = target, 1
    while candidate.exists():
        candidate = target.with_name(f"{target.name}.{number}")
        number += 1
    os.rename(path, candidate)  # same filesystem: atomic, and the views never see half a move
    return candidate


def _problem(path: Path, deep: bool) -> str | None:
    try:
        with pq.ParquetFile(path) as parquet:
            parquet.schema_arrow  # noqa: B018 - parsing the schema is the check
            if deep:
                for index in range(parquet.num_row_groups):
                    parquet.read_row_group(index)
    except (OSError, pa.ArrowException, ValueError) as error:
        text = "".join(c if c.isprintable() else " " for c in str(error))  # thrift quotes raw bytes
        return " ".join(text.split()) or type(error).__name__
    return None
