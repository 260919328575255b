"""The converter on a real journal: nothing appears in the lake until a seal, the journal offset is
committed only after it, and an abandoned batch (a crash before the seal) is converted again exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from recorder.convert import CHUNK_RECORDS, Converter
from storage.journal import DATA, JournalWriter
from storage.views import connect

ROOT = Path(__file__).parents[2]
TOPIC = "BTC-USDT@markPrice"
T0_US = 1_717_200_000_000_000


def _journal(data_dir: Path, count: int) -> None:
    with JournalWriter(data_dir / "journal") as journal:
        for seq in range(count):
            data = {
                "e": "markPriceUpdate",
                "E": T0_US // 1000 + seq,
                "s": "BTC-USDT",
                "p": f"{60000 + seq}.5",
            }
            text = json.dumps({"code": 0, "dataType": TOPIC, "data": data})
            journal.append(T0_US + seq, "c1", seq, DATA, text)


def _count(data_dir: Path, sql: str) -> int:
    with connect(data_dir / "lake") as con:
        (value,) = con.execute(sql).fetchall()[0]
    return int(value)


def test_steps_show_nothing_until_the_seal_then_every_record_once(tmp_path: Path) -> None:
    count = 2 * CHUNK_RECORDS + 5  # three chunks
    _journal(tmp_path, count)
    converter = Converter(tmp_path)
    assert [converter.step(), converter.step(), converter.step(), converter.step()] == [
        CHUNK_RECORDS,
        CHUNK_RECORDS,
        5,
        0,
    ]
    assert not list((tmp_path / "lake").rglob("*.parquet"))  # only hidden partial files so far
    assert converter.reader.committed().segment == ""  # nothing committed before the seal
    converter.seal()
    assert converter.records == count and converter.pending == 0
    assert _count(tmp_path, "SELECT count(*) FROM mark_prices") == count
    assert _count(tmp_path, "SELECT count(DISTINCT mark_price) FROM mark_prices") == count
    assert len(list((tmp_path / "lake" / "mark_prices").rglob("*.parquet"))) == 1  # one file per partition


def test_a_batch_abandoned_before_its_seal_is_converted_again_exactly_once(tmp_path: Path) -> None:
    _journal(tmp_path, CHUNK_RECORDS + 10)
    crashed = Converter(tmp_path)
    assert crashed.step() == CHUNK_RECORDS
    crashed.abandon()  # what a kill -9 before the seal leaves: no file, no commit
    assert not list((tmp_path / "lake").rglob("*.parquet")) and not list(
        (tmp_path / "lake").rglob("*.partial")
    )
    restarted = Converter(tmp_path)
    assert restarted.drain() == CHUNK_RECORDS + 10
    assert _count(tmp_path, "SELECT count(*) FROM raw_messages") == CHUNK_RECORDS + 10
    assert _count(tmp_path, "SELECT count(*) FROM mark_prices") == CHUNK_RECORDS + 10
    assert Converter(tmp_path).drain() == 0  # committed: a third start has nothing to do


KILLED_MID_BATCH = """
import os, signal, sys
from pathlib import Path
from recorder.convert import Converter
converter = Converter(Path(sys.argv[1]))
converter.step()
converter._batch.spill_bytes = 1  # the next chunk spills: its row groups go to hidden files
converter.step()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_hidden_files_of_a_batch_killed_before_its_seal_are_deleted_on_the_next_start(tmp_path: Path) -> None:
    _journal(tmp_path, CHUNK_RECORDS + 10)
    child = subprocess.run(
        [sys.executable, "-c", KILLED_MID_BATCH, str(tmp_path)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.returncode == -signal.SIGKILL
    assert list((tmp_path / "lake").rglob("*.partial"))  # no finished file, no commit: hidden files only
    assert not list((tmp_path / "lake").rglob("*.parquet"))
    restarted = Converter(tmp_path)
    assert list((tmp_path / "lake").rglob("*.partial")) == []
    assert restarted.drain() == CHUNK_RECORDS + 10
    assert _count(tmp_path, "SELECT count(*) FROM mark_prices") == CHUNK_RECORDS + 10
    assert list((tmp_path / "lake").rglob("*.partial")) == []
    assert not (tmp_path / "journal" / ".partials").exists()
