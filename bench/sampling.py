"""A sampling profile of the recorder's process tree with py-spy (bench-only, installed into the cache).

cProfile sees only the main thread, and the recorder works in threads and a converter process.
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter
from pathlib import Path

from bench.harness import CACHE

TARGET = CACHE / "pyspy"


def py_spy(target: Path = TARGET) -> Path | None:
    """The py-spy binary, installed into the bench cache on first use; None when that fails."""
    binary = target / "bin" / "py-spy"
    if not binary.exists():
        command = [sys.executable, "-m", "pip", "install", "-q", "--target", str(target), "py-spy"]
        try:
            subprocess.run(command, check=True, capture_output=True, timeout=300)
        except (subprocess.SubprocessError, OSError):
            return None
    return binary if binary.exists() else None


def start(pid: int, seconds: float, raw: Path) -> subprocess.Popen[bytes] | None:
    """Sample `pid` and its children for `seconds` into `raw` (collapsed stacks); None without py-spy."""
    binary = py_spy()
    if binary is None:
        return None
    command = [
        str(binary),
        "record",
        "--format",
        "raw",
        "--subprocesses",
        "--nonblocking",
        "-r",
        "100",
        "-d",
        str(max(1, int(seconds))),
        "--pid",
        str(pid),
        "-o",
        str(raw),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def summarise(raw: Path, top: int = 30) -> str:
    """The functions where the samples were (self), and the heaviest call paths' frames (inclusive)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [frame for frame in stack.split(";") if not frame.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    lines = [f"{total} samples (100 Hz, every process and thread of the recorder)", "", "self:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(top)] if total else []
    lines += ["", "inclusive:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)] if total else []
    return "\n".join(lines) + "\n"
