"""Run the recorder in-process against the simulator, then read what landed through the views."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from recorder.connection import ConnectionOptions
from recorder.runner import Recorder, RecordOptions
from simulator import Simulator
from storage.views import connect

FAST = {"ping_interval_s": 0.25, "pong_timeout_s": 5.0}  # simulator knobs: short heartbeats for tests


def options(
    sim: Simulator, symbols: Sequence[str], channels: Sequence[str], **overrides: Any
) -> RecordOptions:
    connection = ConnectionOptions(
        url=sim.ws_url,
        silence_timeout_s=overrides.pop("silence_timeout_s", 2.0),
        subscribes_per_second=overrides.pop("subscribes_per_second", 200.0),
        ack_timeout_s=overrides.pop("ack_timeout_s", 3.0),
        backoff_first_s=0.05,
        backoff_cap_s=0.3,
    )
    overrides.setdefault("converter", "thread")
    return RecordOptions(channels=list(channels), symbols=list(symbols), connection=connection, **overrides)


@contextmanager
def recording(data_dir: Path, opts: RecordOptions, recorder: Recorder | None = None) -> Iterator[Recorder]:
    """Record in a background thread until the block ends; the journal is fully converted on exit."""
    recorder = recorder or Recorder(data_dir, opts)
    stop = threading.Event()
    thread = threading.Thread(target=recorder.run, args=(stop,), name="recorder")
    thread.start()
    try:
        yield recorder
    finally:
        stop.set()
        thread.join(15)
        assert not thread.is_alive()


def wait_for(condition: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def query(lake: Path, sql: str) -> list[dict[str, Any]]:
    con = connect(lake)
    try:
        return con.sql(sql).to_arrow_table().to_pylist()  # type: ignore[no-any-return]
    finally:
        con.close()
