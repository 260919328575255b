"""Compaction SIGKILLed at seeded random moments (a line of storage/ code), then run again: the views never
change, and once it completes the compacted partitions hold exactly the view's rows."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from datetime import date
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from storage import layout
from storage.compact import compact
from tests.storage.lakes import KLINES, TRADES, build, settled, snapshot, trades

ROOT = Path(__file__).parents[2]
SEED = 20
# Counts the lines run in storage/ and kills itself at line K (K = 0: never; prints the count at the end).
CHILD = """
import os, signal, sys
from datetime import date
from storage.compact import compact
from storage.lake import Lake
from tests.storage.lakes import KLINES, TRADES

kill_at, seen = int(sys.argv[2]), 0
def trace(frame, event, arg):
    global seen
    if event == "line" and "/storage/" in frame.f_code.co_filename:
        seen += 1
        if seen == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
    return trace
sys.settrace(trace)
compact(Lake(sys.argv[1]), [TRADES, KLINES], date(2030, 1, 1), grace_s=0)
sys.settrace(None)
print(seen)
"""


def _run(root: Path, kill_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(kill_at)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.slow
def test_compaction_killed_at_20_random_moments_never_changes_the_views(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    lake = build(tmp_path, SEED, days=2, seals=3)
    trial = build(tmp_path / "trial", SEED, days=2, seals=3)
    lines = int(_run(Path(trial.root), 0).stdout)  # how many storage lines a whole run takes
    for kill in range(20):
        late = trades(rng, kill % 2, 20, seal=100 + kill)  # new work each round: late seals and backfill
        lake.write(TRADES, late, combined=True)
        lake.write(TRADES, settled(late, 0.5, rng))
        before = {name: snapshot(tmp_path, name) for name in ("trades", "klines")}
        child = _run(tmp_path, rng.randint(1, lines))
        where = f"seed {SEED}, kill {kill}: {child.stderr[-500:]}"
        assert child.returncode in (-signal.SIGKILL, 0), where
        assert {name: snapshot(tmp_path, name) for name in before} == before, where
    compact(lake, [TRADES, KLINES], date(2030, 1, 1), grace_s=0)
    assert not (tmp_path / layout.CONTROL / "lease.json").exists()
    for name in ("trades", "klines"):
        files = sorted((tmp_path / name).rglob("*.parquet"))
        assert all(layout.is_compacted(str(path)) for path in files), f"seed {SEED}"
        assert sum(pq.ParquetFile(path).metadata.num_rows for path in files) == len(snapshot(tmp_path, name))
