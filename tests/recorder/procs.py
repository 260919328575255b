"""Real `bingx-recorder record` processes against the simulator; what landed checked against its ledger."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from simulator import Simulator
from tests.recorder.conftest import query

ROOT = Path(__file__).parents[2]


def record(
    sim: Simulator,
    data_dir: Path,
    symbols: Sequence[str],
    channels: Sequence[str],
    *extra: str,
    **popen: Any,
) -> subprocess.Popen[bytes]:
    """Start `python -m cli record` on `data_dir` (stderr as given in `popen`, inherited by default)."""
    argv = [sys.executable, "-m", "cli", "--data-dir", str(data_dir), "--ws-url", sim.ws_url]
    argv += ["--rest-url", sim.rest_url or "http://127.0.0.1:9", "--log-level", "WARNING", "record"]
    argv += ["--symbols", ",".join(symbols), "--channels", ",".join(channels), "--silence-timeout", "10"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([*argv, *extra], env=env, cwd=ROOT, **popen)


def landed(data_dir: Path) -> Counter[str]:
    """How many times each data frame text is in raw_messages (the view: one row per connection and seq)."""
    return Counter(
        row["text"]
        for row in query(data_dir / "lake", "SELECT text FROM raw_messages WHERE topic IS NOT NULL")
    )


def sent_texts(sim: Simulator, topics: Sequence[str], before_ms: int | None = None) -> list[str]:
    """The texts the simulator sent on `topics` (those sent before `before_ms` if given)."""
    return [
        frame.text
        for topic in topics
        for frame in sim.ledger.frames(topic)
        if before_ms is None or frame.sent_ms < before_ms
    ]


def partials(data_dir: Path) -> list[Path]:
    """Hidden files a writer left: none may survive a clean stop."""
    return [
        path for path in data_dir.rglob("*") if path.name.endswith(".partial") or path.name == ".partials"
    ]
