"""Lakes on an object store (`s3://bucket/prefix`): one fsspec filesystem that pyarrow writes through and
DuckDB reads through (DuckDB's httpfs extension cannot be downloaded here, so it is registered from Python).

Every path such a lake lists is a URI (`s3://bucket/key`), the very string DuckDB opens once the filesystem
is registered: the views, compaction and rebuild pass lake paths to SQL unchanged. Endpoint, region and
credentials come from the standard AWS environment (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID, ...,
read by botocore); nothing here reads, logs or stores them.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import duckdb
import pyarrow.fs as pafs

SCHEMES = ("s3",)
_OPENED: dict[str, Any] = {}  # scheme -> the fsspec filesystem this process opened (s3fs caches them too)
_LOCK = threading.Lock()
_INFO_TTL_S = 1.0


class ObjectStoreUnavailable(Exception):
    """A lake URI names an object store this installation cannot reach (s3fs missing, unknown scheme)."""


def is_object_store(uri: str) -> bool:
    """Say whether a lake location is an object-store URI this package writes through fsspec."""
    return uri.split("://", 1)[0].lower() in SCHEMES if "://" in uri else False


def open_filesystem(uri: str) -> tuple[pafs.FileSystem, Any]:
    """The pyarrow filesystem (listing URIs) and the fsspec filesystem behind it for a lake URI."""
    scheme = uri.split("://", 1)[0].lower()
    if scheme not in SCHEMES:
        raise ObjectStoreUnavailable(f"--lake {uri}: unknown scheme {scheme!r}; use a local path or s3://")
    with _LOCK:
        if scheme not in _OPENED:
            try:
                import s3fs
            except ImportError:
                raise ObjectStoreUnavailable(
                    f"--lake {uri}: S3 needs s3fs; install it with pip install 'bingx-recorder[s3]'"
                ) from None
            # Endpoint, region and credentials: botocore resolves them from the environment. No listing
            # cache: other writers (shards, the compactor) add and delete files, and every listing must see
            # them; s3fs's cache also went stale inside one process after DuckDB's `**` globs (checked).
            _OPENED[scheme] = _flat_listing(s3fs.S3FileSystem)(use_listings_cache=False)
        fs = _OPENED[scheme]
    return pafs.PyFileSystem(_SchemedHandler(fs, scheme)), fs


def register_filesystems(con: duckdb.DuckDBPyConnection, root: str = "") -> None:
    """Let DuckDB open the `s3://` paths of `root` and of every object-store lake this process opened."""
    if is_object_store(root):
        open_filesystem(root)
    with _LOCK:
        opened = list(_OPENED.values())
    registered = set(con.list_filesystems())
    for fs in opened:
        name = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
        if name not in registered:  # registering a name twice is an error (DuckDB 2.0.1)
            con.register_filesystem(fs)


def upload(fs: Any, local: str, final: str) -> None:
    """Copy a finished local file to its final key: the object appears whole when the PUT (or the
    multipart upload) completes, and a failed multipart upload is aborted, so no reader sees part of it."""
    fs.put_file(local, final)


def create_exclusive(fs: Any, path: str, data: bytes) -> bool:
    """Write `data` to `path` unless an object is there (S3 If-None-Match: *); say whether it was written."""
    try:
        fs.pipe_file(path, data, mode="create")
    except FileExistsError:
        return False
    return True


def _flat_listing(base: Any) -> Any:
    """`base` (an s3fs filesystem class) whose depth-limited finds are one flat listing, filtered here.

    fsspec's glob of `trades/symbol=*/date=*/*.parquet` walks the folders: one LIST request per folder,
    thousands per query on a market-wide lake, the views' `glob()`s and scans each paying it. One
    paginated LIST of the pattern's fixed prefix (no delimiter) costs a request per 1,000 objects instead.
    """

    class FlatListing(base):  # type: ignore[misc,valid-type]
        _infos: dict[str, tuple[float, Any]] = {}  # noqa: RUF012 (shared by design: one per process)

        async def _info(self, path: str, *args: Any, **kwargs: Any) -> Any:
            """HEAD a Parquet file at most once a second: DuckDB's fsspec bridge asks for a file's size and
            time ~15 times per query (540 HEADs for 36 files against moto; 79 with this). Lake files are
            immutable under their names; a file replaced in place (a rebuild) can make a query that read
            it within the second fail once on its footer (never read wrong rows), as a deletion can race
            a listing."""
            # bucket, key, refresh, version_id: a call that sets any of them asks for something else
            if not path.endswith(".parquet") or any(args) or any(kwargs.values()):
                return await super()._info(path, *args, **kwargs)
            key, now = self._strip_protocol(path), time.monotonic()
            hit = self._infos.get(key)
            if hit is not None and now - hit[0] < _INFO_TTL_S:
                return dict(hit[1])
            info = await super()._info(path, **kwargs)
            if len(self._infos) > 100_000:
                self._infos.clear()
            self._infos[key] = (now, info)
            return dict(info)

        async def _find(
            self,
            path: str,
            maxdepth: int | None = None,
            withdirs: Any = None,
            detail: bool = False,
            prefix: str = "",
            **kwargs: Any,
        ) -> Any:
            if not maxdepth or prefix:
                return await super()._find(
                    path, maxdepth=maxdepth, withdirs=withdirs, detail=detail, prefix=prefix, **kwargs
                )
            found = await super()._find(path, withdirs=withdirs, detail=True, **kwargs)
            root = self._strip_protocol(path).rstrip("/")
            kept = {
                name: info
                for name, info in found.items()
                if name.removeprefix(root).strip("/").count("/") < maxdepth
            }
            return kept if detail else sorted(kept)

    return FlatListing


class _SchemedHandler(pafs.FSSpecHandler):  # type: ignore[misc]
    """pyarrow's view of an fsspec filesystem whose listings keep the scheme (`s3://bucket/key`)."""

    def __init__(self, fs: Any, scheme: str) -> None:
        super().__init__(fs)
        self.prefix = f"{scheme}://"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _SchemedHandler) and self.fs == other.fs and self.prefix == other.prefix

    def __ne__(self, other: object) -> bool:
        return not self == other

    def get_file_info_selector(self, selector: pafs.FileSelector) -> list[pafs.FileInfo]:
        bare = pafs.FileSelector(
            selector.base_dir.removeprefix(self.prefix),
            allow_not_found=selector.allow_not_found,
            recursive=selector.recursive,
        )
        return [
            pafs.FileInfo(
                self.prefix + info.path.removeprefix(self.prefix).lstrip("/"),
                info.type,
                mtime=info.mtime,
                size=info.size,
            )
            for info in super().get_file_info_selector(bare)
        ]
