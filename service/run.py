"""The `run` supervisor: starts every Part as a child process, restarts the long-running ones with backoff,
starts the scheduled ones at their slots (never two of one at once), reloads symbols on SIGHUP and stops
everything within the stop timeout. It reads no flags nor files: cli.py hands it a checked config and the
function that reads it again on SIGHUP."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from exchange.backoff import backoff
from service.config import ConfigError, ServiceConfig
from service.parts import Part
from service.processes import (
    describe_exit,
    die_with_parent,
    has_members,
    kill_group,
    reap_orphans,
    send_signal,
)
from service.state import write_state

log = logging.getLogger(__name__)
Load = Callable[[Path], ServiceConfig]  # reads and checks a config file; ConfigError if it is bad

TICK_S = 0.2
HEALTHY_S = 60.0  # a child that ran this long had recovered: its next death starts the backoff afresh
FIRST_RESTART_S, MAX_RESTART_S = 1.0, 60.0
RELOAD_STOP_S = 15.0  # a recorder restarted for new symbols gets this long to seal before SIGKILL


class Child:
    """One Part's process and its history: starts, failures, the last exit; for a schedule, its last run."""

    def __init__(self, part: Part, now: float, delays: Callable[[], Iterator[float]]) -> None:
        self.part = part
        self.backoff = delays
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = self.failures = self.skipped = 0
        self.next_at = now  # every part starts at once; a schedule's next slot is counted from its start
        self.started_at: float | None = None
        self.last: dict[str, Any] = {}
        self.result: str | None = None
        self.replace_by: float | None = None  # SIGHUP: stopping this one to start it with new arguments
        self.delays = delays()

    @property
    def is_running(self) -> bool:
        return self.popen is not None

    def summary(self, config: ServiceConfig, wall_offset: float) -> dict[str, Any]:
        """The child's entry in state/service.json (times as epoch seconds)."""
        entry: dict[str, Any] = {
            "kind": "every" if self.part.every_s is not None else "long-running",
            "pid": None if self.popen is None else self.popen.pid,
            "symbols": self.part.symbols(config),
            "starts": self.starts,
            "restarts": max(0, self.starts - 1) if self.part.every_s is None else 0,
            "failures": self.failures,
            "last_exit": self.last or None,
        }
        if self.part.every_s is not None:
            entry |= {"every_s": self.part.every_s, "skipped": self.skipped, "last_result": self.result}
            entry["next_at"] = None if self.is_running else round(self.next_at + wall_offset, 3)
        return entry


class Supervisor:
    """Runs the children of one config until `stop` is set; `reload` set means SIGHUP arrived."""

    def __init__(
        self,
        config: ServiceConfig,
        parts: list[Part],
        state_path: Path,
        env: dict[str, str],
        load: Load,
        popen: Callable[..., subprocess.Popen[bytes]] = subprocess.Popen,
        delays: Callable[[], Iterator[float]] = lambda: backoff(FIRST_RESTART_S, 2.0, MAX_RESTART_S),
    ) -> None:
        self.config, self.state_path, self.env, self._popen = config, state_path, env, popen
        self.load = load
        now = time.monotonic()
        self.children = [Child(part, now, delays) for part in parts]
        self.groups: set[int] = set()  # every child's process group: a dead recorder's converter lives on
        self.started_wall = time.time()
        self._wall_offset = time.time() - now
        self._written = 0.0
        self.on_ended: Callable[[int], object] | None = None  # told each child's pid when it ends

    def run(self, stop: threading.Event, reload: threading.Event) -> None:
        """Supervise until stop is set, then stop every child (SIGTERM, SIGKILL at the stop timeout)."""
        log.info("run: %d parts: %s", len(self.children), ", ".join(c.part.name for c in self.children))
        while not stop.is_set():
            if reload.is_set():
                reload.clear()
                self.reload()
            now = time.monotonic()
            for child in self.children:
                self._tick(child, now)
            live = {c.popen.pid for c in self.children if c.popen is not None}
            reap_orphans(live)
            self.groups = {g for g in self.groups if g in live or has_members(g)}
            if now - self._written >= 5.0:
                self.write_state()
            stop.wait(TICK_S)
        self.stop_all(self.config.top["stop_timeout"])

    def _tick(self, child: Child, now: float) -> None:
        if child.popen is not None and child.popen.poll() is not None:
            self._ended(child, now)
        if child.popen is None and now >= child.next_at:
            self._start(child, now)
        elif child.popen is not None and child.part.every_s is not None and now >= child.next_at:
            child.skipped += 1  # never two of the same at once: this slot passes
            child.next_at += child.part.every_s
            log.warning("%s: still running at its next slot; skipped it", child.part.name)
        if child.replace_by is not None and child.popen is not None and now >= child.replace_by:
            kill_group(child.popen.pid)

    def _start(self, child: Child, now: float) -> None:
        argv = child.part.argv(self.config, time.time())
        scheduled = child.part.every_s is not None
        try:
            child.popen = self._popen(
                argv,
                env=self.env,
                start_new_session=True,  # its own group: a terminal's Ctrl-C reaches the service only
                stdout=subprocess.PIPE,  # summary lines become the service's log lines (json stays json)
                preexec_fn=die_with_parent,
            )
        except OSError as error:
            child.failures += 1
            child.next_at = now + (child.part.every_s or next(child.delays))
            log.error(
                "%s: cannot start (%s); next try in %.0f s", child.part.name, error, child.next_at - now
            )
            return
        self.groups.add(child.popen.pid)
        child.starts += 1
        child.started_at = now
        assert child.popen.stdout is not None
        _results(child, child.popen.stdout)
        if child.part.every_s is not None:
            child.next_at = now + child.part.every_s
        log.log(
            logging.DEBUG if scheduled else logging.INFO,
            "%s: started, pid %d",
            child.part.name,
            child.popen.pid,
        )
        self.write_state()

    def _ended(self, child: Child, now: float) -> None:
        assert child.popen is not None and child.started_at is not None
        code, pid = child.popen.returncode, child.popen.pid
        child.popen = None
        if self.on_ended is not None:
            self.on_ended(pid)
        ran = now - child.started_at
        child.last = {"pid": pid, "code": code, "at": round(time.time(), 3), "ran_s": round(ran, 3)}
        if child.part.every_s is not None:
            if code != 0:
                child.failures += 1
                log.warning(
                    "%s: failed (%s); retrying at the next slot in %.0f s",
                    child.part.name,
                    describe_exit(code),
                    max(0.0, child.next_at - now),
                )
        elif child.replace_by is not None:
            child.replace_by, child.next_at = None, now  # restarted at once with its new arguments
        else:
            child.failures += 1
            if ran >= HEALTHY_S:
                child.delays = child.backoff()
            wait = next(child.delays)
            child.next_at = now + wait
            log.error(
                "%s: died (%s) after %.0f s; restarting it in %.1f s (%d failures so far)",
                child.part.name,
                describe_exit(code),
                ran,
                wait,
                child.failures,
            )
        self.write_state()

    def reload(self) -> None:
        """SIGHUP: re-read the config; apply new symbol lists (the recorder restarts if its changed)."""
        try:
            fresh = self.load(self.config.path)
        except ConfigError as error:
            log.error("reload refused, the running config stays: %s", error)
            return
        applied, ignored = with_symbols(self.config, fresh)
        if ignored:
            log.warning("reload: only symbol lists are reloaded; %s change at the next start", ignored)
        old, self.config = self.config, applied
        changed = 0
        for child in self.children:
            before, after = child.part.symbols(old), child.part.symbols(applied)
            if before == after:
                continue
            changed += 1
            if child.part.every_s is not None:
                log.info("reload: %s symbols %s -> %s from its next run", child.part.name, before, after)
            elif child.popen is not None:
                log.info("reload: %s symbols %s -> %s; restarting it", child.part.name, before, after)
                child.replace_by = time.monotonic() + RELOAD_STOP_S
                send_signal(child.popen, signal.SIGTERM)
        if not changed:
            log.info("reload: no symbol list changed")

    def stop_all(self, timeout_s: float) -> None:
        """SIGTERM every child; SIGKILL the process groups of those still alive after timeout_s."""
        running = [c for c in self.children if c.popen is not None]
        log.info("run: stopping %d children", len(running))
        for child in running:
            assert child.popen is not None
            send_signal(child.popen, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        # a group outlives its leader while what the leader left (a killed recorder's converter) finishes
        while time.monotonic() < deadline and (
            any(c.popen.poll() is None for c in running if c.popen) or any(map(has_members, self.groups))
        ):
            time.sleep(0.05)
        for group in sorted(self.groups):
            kill_group(group)  # the stragglers at the deadline, with whatever they started
        for child in running:
            assert child.popen is not None
            if child.popen.wait() == -signal.SIGKILL:
                log.warning("%s: did not stop in %.1f s; killed", child.part.name, timeout_s)
            self._ended_quietly(child)
        self.write_state(stopped=True)

    def _ended_quietly(self, child: Child) -> None:
        assert child.popen is not None
        child.last = {"pid": child.popen.pid, "code": child.popen.returncode, "at": round(time.time(), 3)}
        child.popen = None

    def write_state(self, stopped: bool = False) -> None:
        self._written = time.monotonic()
        children = {c.part.name: c.summary(self.config, self._wall_offset) for c in self.children}
        write_state(self.state_path, os.getpid(), self.config.path, self.started_wall, children, stopped)


def with_symbols(running: ServiceConfig, fresh: ServiceConfig) -> tuple[ServiceConfig, str]:
    """The running config with fresh's symbol lists; and a word on what else differed (ignored)."""
    record = running.record
    if record is not None and fresh.record is not None and fresh.record.get("symbols") is not None:
        record = {**record, "symbols": fresh.record["symbols"]}
    polls = _entries(running.polls, fresh.polls)
    backfills = _entries(running.backfills, fresh.backfills)
    applied = replace(running, record=record, polls=polls, backfills=backfills)
    return applied, "" if _without_symbols(running) == _without_symbols(fresh) else "other keys"


def _entries(
    running: tuple[dict[str, Any], ...], fresh: tuple[dict[str, Any], ...]
) -> tuple[dict[str, Any], ...]:
    if len(running) != len(fresh):
        return running
    return tuple({**old, "symbols": new["symbols"]} for old, new in zip(running, fresh, strict=True))


def _without_symbols(config: ServiceConfig) -> ServiceConfig:
    return replace(
        config,
        record=None if config.record is None else {**config.record, "symbols": None},
        polls=tuple({**entry, "symbols": None} for entry in config.polls),
        backfills=tuple({**entry, "symbols": None} for entry in config.backfills),
    )


def _results(child: Child, stream: IO[bytes]) -> None:
    """Log a child's stdout (its summary line) as the service's own lines; keep the last one."""

    def read() -> None:
        with stream:
            for raw in stream:
                line = raw.decode(errors="replace").strip()
                if line:
                    child.result = line
                    log.info("%s: %s", child.part.name, line)

    threading.Thread(target=read, name=f"{child.part.name} output", daemon=True).start()


def _metrics(address: str, data_dir: Path, env: dict[str, str]) -> Any:
    """Start the service's metrics server over its children's multiprocess files (set in their env)."""
    directory = data_dir / "state" / "metrics"
    shutil.rmtree(directory, ignore_errors=True)  # a previous run's pids are not this run's processes
    directory.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    from service.metrics import BadAddress, serve  # after the variable: prometheus-client reads it at import

    try:
        return serve(address, data_dir, multiprocess=True)
    except BadAddress as error:
        raise ConfigError(f"config {address!r}: {error}") from None


def serve(
    config: ServiceConfig,
    load: Load,
    settings: dict[str, str],
    data_dir: Path,
    supports: Callable[[str, str], bool],
    executable: str,
) -> None:
    """Supervise the config's children until SIGTERM/SIGINT (SIGHUP reloads symbols); return on a clean stop.

    `load` reads the config file again on SIGHUP.

    With config.metrics, one server here shows every child's metrics (prometheus-client's multiprocess
    mode: the children write theirs into state/metrics/, emptied at each start) and the recorder's /health.
    """
    from service.parts import base_argv, child_env, parts
    from service.state import STATE_FILE, service_lock

    found = parts(config, base_argv(executable, config, settings, supports), data_dir, supports)
    if not found:
        raise ConfigError(f"config {config.path}: nothing to run: add [record], [[poll]] or [[backfill]]")
    stop, reload = threading.Event(), threading.Event()
    with service_lock(data_dir):  # before the handlers: a refused second run leaves them as they were
        previous = {
            signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        }
        try:
            for signum in (signal.SIGTERM, signal.SIGINT):
                signal.signal(signum, lambda *_: stop.set())
            signal.signal(signal.SIGHUP, lambda *_: reload.set())
            env = child_env(config, dict(os.environ))
            server = _metrics(config.metrics, data_dir, env) if config.metrics else None
            supervisor = Supervisor(config, found, data_dir / STATE_FILE, env, load)
            if server is not None:
                from service.metrics import forget

                supervisor.on_ended = forget
            try:
                supervisor.run(stop, reload)
            finally:
                if server is not None:
                    server.close()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
    log.info("run: stopped")
