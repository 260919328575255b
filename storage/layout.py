"""Where each kind of lake file lives and how it is named; the only place that spells lake paths.

A dataset folder holds two areas with one hive scheme each (DuckDB refuses one glob over mixed keys):

* `<dataset>/<k>=<v>/.../date=<D>/` (the dataset's partitions, then the day): one partition per folder.
  Backfill and `Lake.write` files are `<source>-<first-event-ms>-<uuid>.parquet`; compaction's output is
  `compacted-<id>.parquet`, exactly the rows the view shows, no partition column stored (the path has it).
* `<dataset>/date=<D>/`: the recorder's and the pollers' files, one per dataset per seal or round, every
  symbol in it (partition columns stored, rows sorted by them, each symbol's rows in receive order). For
  a dataset without partitions (raw_messages, stream_events) this is the same folder as the first area.

Outside every view: `_superseded/<dataset>/<partitions>/date=<D>/` (rows compaction did not keep),
`_rejects/` and `_compaction/` (the lease and the compactions in progress).
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.dataset import SOURCES, Dataset

COMPACTED = "compacted"  # file-name prefix of compaction output: a name no source can have
SUPERSEDED = "_superseded"
CONTROL = "_compaction"


def partition_folder(root: str, dataset: Dataset, values: Sequence[object], day: str) -> str:
    """The folder of one partition: `<root>/<dataset>/<k>=<v>/.../date=<day>`."""
    if len(values) != len(dataset.partitions):
        raise ValueError(f"{dataset.name}: {len(values)} partition values for {dataset.partitions}")
    return f"{series_folder(root, dataset, values)}/date={day}"


def series_folder(root: str, dataset: Dataset, values: Sequence[object]) -> str:
    """The folder of the files under the first len(values) partitions: `<root>/<dataset>/<k>=<v>/...`."""
    keys = "".join(f"/{column}={value}" for column, value in zip(dataset.partitions, values, strict=False))
    return f"{root}/{dataset.name}{keys}"


def part_name(source: str, first_ms: int, unique: str) -> str:
    """The name of a per-partition file: `<source>-<first-event-ms>-<unique>.parquet`."""
    return f"{source}-{first_ms}-{unique}.parquet"


def first_event_ms(name: str, source: str) -> int | None:
    """Read the first-event ms of a `part_name` of `source`; None for other sources and unfinished files."""
    parts = name.split("-")
    if len(parts) < 3 or parts[0] != source or not name.endswith(".parquet") or not parts[1].isdigit():
        return None
    return int(parts[1])


def combined_folder(root: str, dataset: Dataset, day: str) -> str:
    """The folder of the files that hold every symbol of a day (seals, poll rounds)."""
    return f"{root}/{dataset.name}/date={day}"


def superseded_folder(root: str, dataset: Dataset, values: Sequence[object], day: str) -> str:
    return partition_folder(f"{root}/{SUPERSEDED}", dataset, values, day)


def _depth(dataset: Dataset) -> str:
    return "".join(f"/{column}=*" for column in dataset.partitions) + "/date=*"


def source_globs(root: str, dataset: Dataset, sources: Sequence[str] = SOURCES) -> list[str]:
    """Globs of the per-partition files that are not compacted, one per source (SOURCES: any new source)."""
    return [f"{root}/{dataset.name}{_depth(dataset)}/{source}-*.parquet" for source in sources]


def fresh_globs(root: str, dataset: Dataset) -> list[str]:
    """Globs of every per-partition file that is not compacted: one pattern (one walk of the folders)
    while no source's name starts like COMPACTED, else one per source."""
    if any(source.startswith(COMPACTED[0]) for source in SOURCES):
        return source_globs(root, dataset)
    return [f"{root}/{dataset.name}{_depth(dataset)}/[!{COMPACTED[0]}]*.parquet"]


def compacted_glob(root: str, dataset: Dataset) -> str:
    return f"{root}/{dataset.name}{_depth(dataset)}/{COMPACTED}-*.parquet"


def combined_glob(root: str, dataset: Dataset) -> str | None:
    """Glob of the files holding every symbol; None where that area is the partition area itself."""
    return f"{root}/{dataset.name}/date=*/*.parquet" if dataset.partitions else None


def superseded_glob(root: str, dataset: Dataset) -> str:
    return f"{root}/{SUPERSEDED}/{dataset.name}{_depth(dataset)}/*.parquet"


def is_compacted(path: str) -> bool:
    return path.rsplit("/", 1)[-1].startswith(COMPACTED + "-")


def hive_values(path: str) -> dict[str, str]:
    """The `k=v` folders of a file's path, e.g. {"symbol": "BTC-USDT", "date": "2024-06-01"}."""
    return dict(part.split("=", 1) for part in path.split("/")[:-1] if "=" in part)
