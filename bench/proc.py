"""CPU seconds and peak RSS of a process tree from /proc (Linux; psutil is not a dependency)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # the command name may contain spaces and parentheses


def cpu_seconds(pid: int, reaped: bool = True) -> float | None:
    """utime+stime of one process (plus cutime+cstime of its reaped children when `reaped`)."""
    fields = _stat_fields(pid)
    if fields is None:
        return None
    # after ")" : state=0 ppid=1 ... utime=11 stime=12 cutime=13 cstime=14 (proc(5) fields 14-17)
    ticks = int(fields[11]) + int(fields[12]) + ((int(fields[13]) + int(fields[14])) if reaped else 0)
    return ticks / TICKS


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the peak resident set size of one process, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def children(pid: int) -> list[int]:
    """Every live descendant of `pid`."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None:
                parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class TreeSampler:
    """Sample a process tree every `interval_s`: CPU seconds (live + reaped), peak RSS of each member."""

    pid: int
    interval_s: float = 0.5
    cpu: dict[int, float] = field(default_factory=dict)
    rss_mb: dict[int, float] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> float:
        """Record the tree now; return its total CPU seconds so far."""
        for pid in [self.pid, *children(self.pid)]:
            seconds = cpu_seconds(pid, reaped=pid == self.pid)
            if seconds is not None:
                self.cpu[pid] = max(self.cpu.get(pid, 0.0), seconds)
            rss = peak_rss_mb(pid)
            if rss is not None:
                self.rss_mb[pid] = max(self.rss_mb.get(pid, 0.0), rss)
        return sum(self.cpu.values())

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="bench-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    @property
    def peak_rss_mb(self) -> float:
        """The largest single-process peak, and the tree's sum of peaks is reported separately."""
        return max(self.rss_mb.values(), default=0.0)

    @property
    def tree_rss_mb(self) -> float:
        return sum(self.rss_mb.values())

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()
