"""Runs the converter beside the receive path: in a child process (real parallelism) or a thread.

One converter per data dir at a time (a file lock): an orphan left by a kill -9 finishes its batch first.
`python -m recorder.process DATA_DIR` converts until its stdin closes (the parent finished or died).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import gc
import logging
import os
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa

from books.tracker import SnapshotOptions
from exchange.logs import FORMAT_ENV, configure, current_format
from recorder.convert import Converter
from storage.lake import WRITTEN, lake_at

log = logging.getLogger(__name__)

# How often the converter seals a batch: the lake lags the journal by about this much. Each seal writes one
# file per dataset x symbol (~1,000 for the whole market) at ~1.5 ms of CPU each, and DuckDB's query time
# grows with the file count (DESIGN.md), so this interval decides much of the recorder's CPU and the lake's
# shape; memory does not grow with it (a batch spills row groups to its hidden files).
SEAL_INTERVAL_S = 30.0
IDLE_S = 0.2  # how long the converter sleeps once it has caught up with the journal
RETRY_S = 2.0  # how often a converter facing a full disk tries again


@contextmanager
def exclusive(data_dir: Path) -> Iterator[None]:
    """Hold the data dir's converter lock (waits while another converter still runs)."""
    (data_dir / "journal").mkdir(parents=True, exist_ok=True)
    with open(data_dir / "journal" / ".converter.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def convert_until(
    data_dir: Path,
    finish: threading.Event,
    grace_s: float = 4.0,
    archive: Path | None = None,
    seal_interval_s: float = SEAL_INTERVAL_S,
    book_snapshots: SnapshotOptions | None = None,
    on_resync: Callable[[str, str], None] | None = None,
    retry_s: float = RETRY_S,
    make: Callable[..., Converter] = Converter,  # a test passes one whose disk fills up
    on_sealed: Callable[[dict[str, Any]], None] | None = None,  # after each seal: recorder.stats.sealed
    *,
    lake: tuple[str, str] = ("", ""),  # (--lake URI or "" for <data-dir>/lake, the file-name tag)
) -> Converter:
    """Convert the journal as it grows, sealing every interval; once `finish` is set, catch up (for at most
    grace_s, the last seal included) and return. `on_resync(topic, reason)`: a book needs a resubscribe.

    A full disk (ENOSPC, EDQUOT) abandons the open batch (its hidden files go, the journal keeps everything)
    and retries every `retry_s`; any other error is raised (the recorder restarts this converter).
    """
    with exclusive(data_dir):
        converter = make(
            data_dir,
            lake=lake_at(data_dir, *lake),
            archive=archive,
            book_snapshots=book_snapshots,
            on_resync=on_resync,
        )
        seal = _Sealer(converter, on_sealed)
        try:
            _convert(converter, finish, grace_s, seal_interval_s, retry_s, seal)
            _seal_last(converter, seal)
        except BaseException:
            converter.abandon()  # its hidden files go; the journal keeps everything
            raise
    log.info(
        "converter: %d records, rows %s, rejects %s",
        converter.records,
        dict(converter.rows),
        _rejects(converter),
    )
    return converter


class _Sealer:
    """Seals the converter's batch and reports what the seal took and wrote (rows by dataset and source)."""

    def __init__(self, converter: Converter, on_sealed: Callable[[dict[str, Any]], None] | None) -> None:
        self.converter, self.on_sealed = converter, on_sealed
        self._reported = Counter(WRITTEN)

    def __call__(self) -> None:
        if not self.converter.pending:
            self.converter.seal()
            return
        started = time.monotonic()
        self.converter.seal()
        seconds = time.monotonic() - started
        if self.on_sealed is None:
            return
        now = Counter(WRITTEN)  # this process's lake writes: the converter's (rows land only on a seal)
        rows = [
            [name, source, count - self._reported[name, source]]
            for (name, source), count in now.items()
            if count > self._reported[name, source]
        ]
        self._reported = now
        self.on_sealed({"seal_s": seconds, "rows": rows, "at": time.time()})


def _convert(
    converter: Converter,
    finish: threading.Event,
    grace_s: float,
    seal_interval_s: float,
    retry_s: float,
    seal: Callable[[], None],
) -> None:
    seal_at = time.monotonic() + seal_interval_s
    finish_at: float | None = None
    full = False
    while True:
        if finish.is_set() and finish_at is None:
            finish_at = time.monotonic() + grace_s / 2  # the other half is for the last seal
        if finish_at is not None and time.monotonic() > finish_at:
            log.warning("converter: stopping with journal left to convert; the next start converts it")
            return
        try:
            converted = converter.step()
            if converter.pending >= converter.batch_records or time.monotonic() >= seal_at:
                seal()
                seal_at = time.monotonic() + seal_interval_s
        except OSError as error:
            if not _is_full(error):
                raise
            converter.abandon()
            if not full:
                log.error(
                    "converter: cannot write the lake (disk full: %s); retrying every %g s, "
                    "the journal keeps every frame meanwhile",
                    error.strerror or error,
                    retry_s,
                )
            full = True
            if finish.is_set():  # stopping: try again soon, within the grace period
                time.sleep(min(retry_s, 0.1))
            else:
                finish.wait(retry_s)
            continue
        if full and not converter.pending:
            log.warning("converter: writing the lake again")
            full = False
        if not converted:
            if finish_at is not None:
                return
            finish.wait(IDLE_S)


def _seal_last(converter: Converter, seal: Callable[[], None]) -> None:
    try:
        seal()
    except OSError as error:
        if not _is_full(error):
            raise
        converter.abandon()
        log.error("converter: the last batch did not fit on the disk; the next start converts it")


def _is_full(error: OSError) -> bool:
    return error.errno in (errno.ENOSPC, errno.EDQUOT)


class ConverterThread:
    """The converter in a thread of this process: simplest, shares the GIL with the receive path."""

    def __init__(
        self,
        data_dir: Path,
        grace_s: float = 4.0,
        archive: Path | None = None,
        seal_interval_s: float = SEAL_INTERVAL_S,
        book_snapshots: SnapshotOptions | None = None,
        on_resync: Callable[[str, str], None] | None = None,
        on_sealed: Callable[[dict[str, Any]], None] | None = None,
        lake: tuple[str, str] = ("", ""),
    ) -> None:
        self._finish = threading.Event()
        self._error: BaseException | None = None

        def sealed(report: dict[str, Any]) -> None:  # its rows are in this process's WRITTEN already
            if on_sealed is not None:
                on_sealed({**report, "rows": []})

        self._thread = threading.Thread(
            target=self._run,
            kwargs={
                "data_dir": data_dir,
                "finish": self._finish,
                "grace_s": grace_s,
                "archive": archive,
                "seal_interval_s": seal_interval_s,
                "book_snapshots": book_snapshots,
                "on_resync": on_resync,
                "on_sealed": sealed,
                "lake": lake,
            },
            name="converter",
            daemon=True,
        )
        self._thread.start()

    def finish(self, timeout_s: float) -> None:
        self._finish.set()
        self._thread.join(timeout_s)

    def death(self) -> str | None:
        """Why the converter stopped on its own (None while it runs or after finish())."""
        if self._thread.is_alive() or self._finish.is_set():
            return None
        return f"{type(self._error).__name__}: {self._error}" if self._error else "it returned"

    def _run(self, **arguments: Any) -> None:
        try:
            convert_until(**arguments)
        except Exception as error:  # reported through death(): the recorder restarts it
            self._error = error
            log.exception("converter: failed")


class ConverterProcess:
    """The converter in a child process: the receive path never competes with Parquet writing for the GIL.

    The child ignores SIGINT and SIGTERM (a terminal's Ctrl-C and systemd's stop reach the whole process
    group): it stops when its stdin closes, after its last seal, so a stop never cuts a batch short.
    """

    def __init__(
        self,
        data_dir: Path,
        grace_s: float = 4.0,
        log_level: str = "WARNING",
        archive: Path | None = None,
        seal_interval_s: float = SEAL_INTERVAL_S,
        book_snapshots: SnapshotOptions | None = None,
        on_resync: Callable[[str, str], None] | None = None,
        on_sealed: Callable[[dict[str, Any]], None] | None = None,
        lake: tuple[str, str] = ("", ""),
    ) -> None:
        # The resync channel: the child writes one JSON line [topic, reason] per resync to a pipe that a
        # thread here reads and hands to `on_resync` (the connection that owns the topic resubscribes).
        # After each seal it writes one JSON object (what the seal took and wrote) for `on_sealed`.
        read_fd, write_fd = os.pipe()
        root = str(Path(__file__).resolve().parents[1])
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])),
            FORMAT_ENV: current_format(),  # the converter logs as the recorder does (--log-format)
        }
        self._finishing = False
        self._child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "recorder.process",
                str(data_dir),
                str(grace_s),
                log_level,
                str(archive or ""),
                str(seal_interval_s),
                _books_argument(book_snapshots),
                str(write_fd),
                *lake,
            ],
            stdin=subprocess.PIPE,
            env=env,
            pass_fds=(write_fd,),
        )
        os.close(write_fd)  # the child holds the only writer: EOF here when it exits
        self._resyncs = threading.Thread(
            target=_read_resyncs,
            args=(read_fd, on_resync, on_sealed),
            name="converter-resyncs",
            daemon=True,
        )
        self._resyncs.start()

    def finish(self, timeout_s: float) -> None:
        assert self._child.stdin is not None
        self._finishing = True
        self._child.stdin.close()  # the child's signal to catch up and exit
        try:
            self._child.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning(
                "converter: not done after %.1f s, killed; the next start converts the rest", timeout_s
            )
            self._child.kill()  # safe: offsets are committed only after durable writes; SIGTERM is ignored
            self._child.wait()

    def death(self) -> str | None:
        """Why the converter exited on its own (None while it runs or after finish())."""
        code = self._child.poll()
        if code is None or self._finishing:
            return None
        return f"killed by signal {-code}" if code < 0 else f"exit code {code}"


def _books_argument(options: SnapshotOptions | None) -> str:
    if options is None:
        return ""
    return orjson.dumps(
        [options.levels, options.interval_ms, options.checkpoint_ms, options.tolerance_ms]
    ).decode()


def _read_resyncs(
    fd: int,
    on_resync: Callable[[str, str], None] | None,
    on_sealed: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    with os.fdopen(fd, "rb") as pipe:
        for line in pipe:
            try:
                message = orjson.loads(line)
                if isinstance(message, dict):
                    if on_sealed is not None:
                        on_sealed(message)
                    continue
                topic, reason = message
            except (orjson.JSONDecodeError, ValueError):
                log.warning("converter: unreadable resync line %r", line[:80])
                continue
            if on_resync is not None:
                try:
                    on_resync(str(topic), str(reason))
                except Exception:  # one bad resubscribe must not end the channel
                    log.exception("converter: resync of %s failed", topic)


def _resync_writer(fd: int) -> tuple[Callable[[str, str], None], Callable[[dict[str, Any]], None]]:
    pipe = os.fdopen(fd, "wb", buffering=0)
    lock = threading.Lock()

    def write(topic: str, reason: str) -> None:
        with lock:
            pipe.write(orjson.dumps([topic, reason]) + b"\n")

    def sealed(report: dict[str, Any]) -> None:
        with lock, contextlib.suppress(OSError):  # the parent went away: the seal itself stands
            pipe.write(orjson.dumps(report) + b"\n")

    return write, sealed


def _rejects(converter: Converter) -> dict[str, int]:
    return {f"{dataset}/{kind}": count for (dataset, kind), count in converter.rejects.items()}


def _main(argv: list[str]) -> None:
    import signal

    data_dir, grace_s, level, archive, seal_s = (
        Path(argv[0]),
        float(argv[1]),
        argv[2],
        argv[3],
        float(argv[4]),
    )
    book_snapshots = SnapshotOptions(*orjson.loads(argv[5])) if len(argv) > 5 and argv[5] else None
    on_resync, on_sealed = _resync_writer(int(argv[6])) if len(argv) > 6 else (None, None)
    lake = (argv[7], argv[8]) if len(argv) > 8 else ("", "")
    configure(level)  # the parent's --log-format reaches us as BINGX_LOG_FORMAT
    # Ctrl-C and systemd's SIGTERM reach the whole group: the parent decides, by closing our stdin
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # jemalloc hands freed batch memory back to the OS; pyarrow's default (mimalloc) kept ~40 MiB more RSS
    # for the same batches in the whole-market bench. Not every pyarrow build has it.
    with contextlib.suppress(NotImplementedError):
        pa.set_memory_pool(pa.jemalloc_memory_pool())
    # Every row is a dict: at the default threshold (700) the young generation was collected every few
    # hundred rows, ~3% of the converter's instructions (callgrind). Cycles are rare here; still collected.
    gc.freeze()
    gc.set_threshold(50_000)
    # A spilled dataset keeps one hidden file open per partition until the seal: ~1,000 for the whole market
    # on one dataset, past the usual soft limit of 1,024 descriptors. The hard limit is ours to take.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    finish = threading.Event()

    def watch_stdin() -> None:
        # os.read holds no lock of sys.stdin's: a daemon thread blocked in sys.stdin.buffer.read() made the
        # interpreter abort (SIGABRT) when the converter exited on an error
        while os.read(0, 4096):  # returns b"" at EOF: the parent closed the pipe or died
            pass
        finish.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    convert_until(
        data_dir,
        finish,
        grace_s,
        Path(archive) if archive else None,
        seal_s,
        book_snapshots,
        on_resync,
        on_sealed=on_sealed,
        lake=lake,
    )


if __name__ == "__main__":
    _main(sys.argv[1:])
