"""`record --account` as a real process: a forced listenKey expiry, a kill -9 and a restart. Every event
delivered while a socket was live lands exactly once; events pushed while none was are a listed gap whose
income is fetched from REST; the key, the secret and the listenKeys appear in no file, log or output."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import IO

import pyarrow.parquet as pq
import pytest

from schemas.account_stream import event_id
from simulator import Simulator
from simulator.account import AccountEvent, AccountOptions
from tests.recorder.account_rows import all_landed, rows_of, rows_per_event
from tests.recorder.conftest import query, wait_for

ROOT = Path(__file__).parents[2]
ACCOUNT = AccountOptions(history_days=1, fill_every_s=0.2, settle_every_s=0.7)
SEED = random.randrange(1 << 30)


def _record(
    sim: Simulator, data_dir: Path, log: IO[bytes], secret: str = ACCOUNT.secret
) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "cli", "--data-dir", str(data_dir), "--ws-url", sim.ws_url]
    argv += ["--rest-url", sim.rest_url or "", "--log-level", "DEBUG", "record", "--account"]
    # converted journal segments are kept (not deleted), so the search below reads the journal too
    argv += [
        "--silence-timeout",
        "6",
        "--lake-interval",
        "0.3",
        "--journal-archive",
        str(data_dir / "archive"),
    ]
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "BINGX_API_KEY": ACCOUNT.api_key,
        "BINGX_API_SECRET": secret,
        "BINGX_CONFIG": "",
    }
    return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def _delivered(sim: Simulator) -> list[AccountEvent]:
    return [e for e in sim.account.events if e.delivered_to]


def _window(detail: str) -> tuple[int, int]:
    """The (from, to) of a gap row's detail, "no live account socket from <iso> to <iso>", in epoch ms."""
    _, _, span = detail.partition(" from ")
    start, _, end = span.partition(" to ")
    return (_ms(start), _ms(end))


def _ms(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp() * 1000)


def _no_socket(sim: Simulator) -> bool:
    return not any(sim.ws.account.sockets.values())


@pytest.mark.slow
def test_account_events_once_across_an_expiry_and_a_kill_9_and_no_secret_anywhere(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    data_dir, logs = tmp_path / "data", tmp_path / "logs"
    logs.mkdir()
    with Simulator(symbols=["BTC-USDT", "ETH-USDT"], account=ACCOUNT, ping_interval_s=0.5) as sim:
        account = sim.account
        with open(logs / "refused.log", "wb") as log:  # a run that fails on purpose: a wrong secret
            refused = _record(sim, data_dir, log, secret="definitely-wrong-secret-5c")
            assert refused.wait(30) == 1
        with open(logs / "first.log", "wb") as log:
            child = _record(sim, data_dir, log)
            try:
                wait_for(lambda: len(_delivered(sim)) >= 5, 30)
                account.expire_listen_keys()
                wait_for(lambda: len(account.listen_keys) >= 2 and bool(account.events[-1].delivered_to), 30)
                time.sleep(rng.uniform(0.3, 1.5))  # the kill point, seeded
                # Trading stops first: an event pushed after the kill could reach a socket the simulator
                # has not yet seen die, and would count as delivered.
                account.paused = True
                killed_ms = int(time.time() * 1000)
                child.send_signal(signal.SIGKILL)
            finally:
                child.wait(10)
        wait_for(lambda: _no_socket(sim), 10)
        for _ in range(3):
            account.trade()  # nobody is connected: these are the gap
        dark = [e for e in account.events if e.time_ms > killed_ms]
        with open(logs / "second.log", "wb") as log:
            restarted = _record(sim, data_dir, log)
            try:
                wait_for(lambda: not _no_socket(sim), 30)
                resumed = len(account.events)
                account.paused = False
                wait_for(lambda: sum(bool(e.delivered_to) for e in account.events[resumed:]) >= 5, 30)
                account.paused = True
                wait_for(lambda: all_landed(data_dir / "lake", account.events[resumed:]), 30)
            finally:
                restarted.send_signal(signal.SIGTERM)
                assert restarted.wait(30) == 0
        events = list(account.events)
        listen_keys = list(account.listen_keys) + list(account.expired_notified)
    lake = data_dir / "lake"
    landed = rows_per_event(lake)
    by_id = {event_id(e.message): e for e in events}
    assert all(count == rows_of(by_id[key]) for key, count in landed.items()), f"seed {SEED}"
    settled = [
        e for e in events if e.delivered_to and (e.time_ms < killed_ms - 1000 or e.time_ms > killed_ms)
    ]
    assert settled and all(landed[event_id(e.message)] == rows_of(e) for e in settled), f"seed {SEED}"
    income = {r["tran_id"] for r in query(lake, "SELECT tran_id FROM income")}
    # Pushed in the last second before the kill: landed, or (still unread in the socket when the process died)
    # inside the gap that starts at the last saved live instant, with their income reconciled from REST.
    last_second = [e for e in events if e.delivered_to and killed_ms - 1000 <= e.time_ms <= killed_ms]
    windows = [
        _window(r["detail"]) for r in query(lake, "SELECT detail FROM stream_events WHERE event = 'gap'")
    ]
    unread = [e for e in last_second if landed[event_id(e.message)] == 0]
    assert all(set(e.income_ids) <= income for e in unread), f"seed {SEED}"
    assert all(any(lo <= e.time_ms <= hi for lo, hi in windows) for e in [*unread, *dark]), f"seed {SEED}"
    assert len(dark) == 6 and not any(e.delivered_to for e in dark)  # 3 fills: order + account update each
    steps = Counter(
        r["event"] for r in query(lake, "SELECT event FROM stream_events WHERE topic = 'account'")
    )
    assert steps["listen_key_expired"] == 1 and steps["listen_key_deleted"] == 1, steps
    gaps = query(lake, "SELECT detail FROM stream_events WHERE event = 'gap'")
    assert len(gaps) >= 2 and steps["reconciled"] >= 2, steps
    assert {i for e in dark for i in e.income_ids} <= income, f"seed {SEED}"
    archived = b"".join(p.read_bytes() for p in (data_dir / "archive").rglob("*") if p.is_file())
    assert b"listenKeyExpired" in archived and b"listen_key_created" in archived  # the search can find things
    secrets = [ACCOUNT.api_key, ACCOUNT.secret, "definitely-wrong-secret-5c", *listen_keys]
    for path in [*data_dir.rglob("*"), *logs.iterdir()]:
        if path.is_file():
            content = path.read_bytes()
            if path.suffix == ".parquet":  # compressed: search the decoded values, not the bytes
                content = str(pq.read_table(path).to_pylist()).encode()
            assert not [s for s in secrets if s.encode() in content], path
    refusal = [line for line in (logs / "refused.log").read_text().splitlines() if line.startswith("Error")]
    assert len(refusal) == 1 and "BINGX_API_SECRET" in refusal[0]  # one line, saying which (DEBUG logs aside)
