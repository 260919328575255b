"""The supervisor with real child processes (small Python scripts) and real signals: restarts with backoff,
schedules that never overlap, a stop that SIGKILLs what ignores SIGTERM, and SIGHUP's symbol reload."""

from __future__ import annotations

import itertools
import logging
import os
import signal
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from cli import read_run_config
from service.config import ServiceConfig, check
from service.parts import Part
from service.run import Supervisor
from service.state import STATE_FILE, read_state
from tests.recorder.conftest import wait_for

ROOT = Path(__file__).parents[2]
BASE = """
stop_timeout = "1s"
[heal]
every = "off"
[compact]
every = "off"
"""


def _config(path: Path, text: str = BASE) -> ServiceConfig:
    path.write_text(text)
    return check(tomllib.loads(text), path)


def _script(code: str) -> Any:
    return lambda config, now_s: [sys.executable, "-c", code]


@contextmanager
def _supervising(tmp_path: Path, parts: list[Part], config: ServiceConfig | None = None) -> Iterator[Any]:
    asked: list[float] = []

    def delays() -> Iterator[float]:
        for wait in itertools.repeat(0.05):
            asked.append(wait)
            yield wait

    supervisor = Supervisor(
        config or _config(tmp_path / "bingx.toml"),
        parts,
        tmp_path / STATE_FILE,
        {},
        read_run_config,
        delays=delays,
    )
    stop, reload = threading.Event(), threading.Event()
    thread = threading.Thread(target=supervisor.run, args=(stop, reload), name="supervisor")
    thread.start()
    try:
        yield supervisor, reload, asked
    finally:
        stop.set()
        thread.join(15)
        assert not thread.is_alive()


def _child(tmp_path: Path, name: str) -> dict[str, Any]:
    state = read_state(tmp_path / STATE_FILE) or {"children": {}}
    return state["children"].get(name, {})  # type: ignore[no-any-return]


def test_a_dying_child_is_restarted_with_backoff_and_its_failures_counted(tmp_path: Path) -> None:
    part = Part("dies", None, _script("import sys; sys.exit(3)"))
    with _supervising(tmp_path, [part]) as (_, _, asked):
        wait_for(lambda: _child(tmp_path, "dies").get("failures", 0) >= 3, 20)
    child = _child(tmp_path, "dies")
    assert child["last_exit"]["code"] == 3 and child["failures"] >= 3, child
    assert child["restarts"] == child["starts"] - 1 >= 2, child
    assert len(asked) >= 3, "each restart waits for the backoff's next delay"


def test_stop_kills_a_child_that_ignores_sigterm_and_what_it_left_in_its_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    code = f"""
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)"
grandchild = subprocess.Popen([sys.executable, "-c", stubborn])
open({str(pids)!r}, "w").write(f"{{grandchild.pid}}\\n")
time.sleep(60)
"""
    with _supervising(tmp_path, [Part("stubborn", None, _script(code))]):
        wait_for(lambda: pids.exists() and pids.read_text().endswith("\n"), 20)
    grandchild = int(pids.read_text())
    child = _child(tmp_path, "stubborn")
    assert child["last_exit"]["code"] == -9, child
    wait_for(lambda: not _alive(grandchild), 10)  # reaped by whoever inherited it


def test_a_schedule_never_overlaps_and_a_failed_run_is_retried_at_the_next_slot(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    code = f"""
import os, sys, time
path = {str(runs)!r}
first = not os.path.exists(path)
with open(path, "a") as f: f.write(f"start {{time.monotonic()}}\\n")
time.sleep(0.4)
with open(path, "a") as f: f.write(f"end {{time.monotonic()}}\\n")
print("ran", flush=True)
sys.exit(1 if first else 0)
"""

    def done() -> bool:
        child = _child(tmp_path, "every")
        ended = (child.get("last_exit") or {}).get("code") == 0
        return child.get("starts", 0) >= 3 and _ended(runs) >= 3 and ended

    with _supervising(tmp_path, [Part("every", 0.15, _script(code))]):
        wait_for(done, 30)
        child = _child(tmp_path, "every")  # before the stop, which may cut a later run short (SIGTERM)
    lines = [line.split() for line in runs.read_text().splitlines()]
    kinds = [kind for kind, _ in lines]
    if kinds[-1:] == ["start"]:  # the run the stop cut short
        kinds.pop()
    assert kinds == ["start", "end"] * (len(kinds) // 2), "two runs of one schedule overlapped"
    assert child["failures"] == 1 and child["skipped"] >= 1 and child["last_result"] == "ran", child
    assert child["last_exit"]["code"] == 0, child


def test_sighup_restarts_only_the_child_whose_symbols_changed_and_refuses_a_bad_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="service.run")
    path = tmp_path / "bingx.toml"
    poll = '[[poll]]\nname = "depth"\nevery = "5s"\nsymbols = ["BTC-USDT"]\n'
    config = _config(path, BASE + poll)
    sleeper = _script("import time; time.sleep(60)")
    parts = [
        Part("poll depth", None, sleeper, lambda c: c.polls[0]["symbols"]),
        Part("other", None, sleeper),
    ]
    with _supervising(tmp_path, parts, config) as (supervisor, reload, _):
        wait_for(lambda: all(_child(tmp_path, n).get("pid") for n in ("poll depth", "other")), 20)
        first = _child(tmp_path, "poll depth")["pid"]
        path.write_text(BASE + poll.replace("BTC-USDT", "ETH-USDT"))
        reload.set()
        wait_for(lambda: _child(tmp_path, "poll depth").get("pid") not in (None, first), 30)
        assert supervisor.config.polls[0]["symbols"] == "ETH-USDT"
        path.write_text(BASE + poll.replace('every = "5s"', 'every = "soon"'))
        reload.set()
        wait_for(lambda: "reload refused" in caplog.text, 20)
        assert supervisor.config.polls[0]["symbols"] == "ETH-USDT"
    poll_child, other = _child(tmp_path, "poll depth"), _child(tmp_path, "other")
    assert poll_child["starts"] == 2 and poll_child["failures"] == 0, poll_child
    assert other["starts"] == 1, other
    assert "poll[0].every = 'soon'" in caplog.text


def _ended(runs: Path) -> int:
    return runs.read_text().count("end ") if runs.exists() else 0


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_children_end_when_the_service_itself_is_killed(tmp_path: Path) -> None:
    _config(tmp_path / "bingx.toml")
    code = f"""
import sys, threading, tomllib
from pathlib import Path
from cli import read_run_config
from service.config import check
from service.parts import Part
from service.run import Supervisor
path = Path({str(tmp_path / "bingx.toml")!r})
config = check(tomllib.loads(path.read_text()), path)
sleeper = Part("sleeper", None, lambda c, now: [sys.executable, "-c", "import time; time.sleep(60)"])
supervisor = Supervisor(config, [sleeper], Path({str(tmp_path / STATE_FILE)!r}), {{}}, read_run_config)
supervisor.run(threading.Event(), threading.Event())
"""
    service = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    try:
        wait_for(lambda: bool(_child(tmp_path, "sleeper").get("pid")), 30)
        sleeper = _child(tmp_path, "sleeper")["pid"]
        service.send_signal(signal.SIGKILL)
    finally:
        service.wait(10)
    wait_for(lambda: not _alive(sleeper), 10)


def test_a_reload_takes_the_symbol_lists_only() -> None:
    from service.run import with_symbols

    text = BASE + '[record]\nsymbols = ["BTC-USDT"]\nchannels = ["trade"]\nlake_interval = 30.0\n'
    text += '[[backfill]]\ndataset = "funding"\nevery = "8h"\n'
    running = check(tomllib.loads(text), Path("bingx.toml"))
    same = check(tomllib.loads(text.replace("BTC-USDT", "ETH-USDT")), Path("bingx.toml"))
    applied, ignored = with_symbols(running, same)
    assert ignored == "" and applied.symbols == "ETH-USDT"
    assert applied.backfills[0]["symbols"] == "ETH-USDT", "a backfill without symbols follows record.symbols"
    more = check(
        tomllib.loads(text.replace("BTC-USDT", "SOL-USDT").replace("30.0", "5.0")), Path("bingx.toml")
    )
    applied, ignored = with_symbols(running, more)
    assert ignored == "other keys" and applied.symbols == "SOL-USDT"
    assert applied.record is not None and applied.record["lake_interval"] == 30.0
