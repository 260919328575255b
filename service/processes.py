"""Process plumbing for the supervisor: signals to one child or its whole group, a child that dies with the
service, and reaping orphans when the service is PID 1 (a container). Linux first; elsewhere a no-op."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys


def describe_exit(code: int) -> str:
    return f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"


def send_signal(popen: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        popen.send_signal(signum)


def kill_group(group: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # an empty group (macOS: zombies only)
        os.killpg(group, signal.SIGKILL)


_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """In the child before exec: SIGTERM when the service dies, even by SIGKILL (Linux: prctl(2)).

    Only a call into the already loaded libc: nothing here allocates or takes a lock (fork with threads)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def has_members(group: int) -> bool:
    """Whether a process group still has a process: an emptied group is forgotten, its id may be reused."""
    try:
        os.killpg(group, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def reap_orphans(ours: set[int]) -> None:
    """As PID 1 (a container), reap what our children left behind; our own children Popen reaps itself."""
    if os.getpid() != 1:
        return
    while True:
        try:
            found = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if found is None or found.si_pid in ours:
            return  # ours: Popen.poll collects its status at the next tick
        os.waitpid(found.si_pid, 0)
