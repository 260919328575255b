"""As PID 1 (a container's entry point) the supervisor reaps what its children leave behind. Needs a PID
namespace (`unshare --pid`, root or user namespaces); skipped where the box does not allow one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SCRIPT = """
import os, sys, threading, time, tomllib
from pathlib import Path
from cli import read_run_config
from service.config import check
from service.parts import Part
from service.run import Supervisor

path = Path(sys.argv[1]) / "bingx.toml"
path.write_text('stop_timeout = "1s"\\n[heal]\\nevery = "off"\\n[compact]\\nevery = "off"\\n')
config = check(tomllib.loads(path.read_text()), path)
# each run leaves a grandchild that outlives it by a moment: an orphan of PID 1
code = "import subprocess, sys; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(0.2)'])"
part = Part("leaver", None, lambda c, now: [sys.executable, "-c", code])
stop = threading.Event()


def zombies() -> list[str]:
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                found.append(proc.name)
        except OSError:
            pass
    return found


def watch() -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and supervisor.children[0].starts < 6:
        time.sleep(0.05)
    time.sleep(1.0)  # the last orphans' 0.2 s, and a tick
    print("pid", os.getpid(), "starts", supervisor.children[0].starts, "zombies", len(zombies()), flush=True)
    stop.set()


supervisor = Supervisor(config, [part], Path(sys.argv[1]) / "service.json", dict(os.environ), read_run_config)
threading.Thread(target=watch, daemon=True).start()
supervisor.run(stop, threading.Event())
"""


def test_as_pid_1_the_supervisor_reaps_its_childrens_orphans(tmp_path: Path) -> None:
    unshare = shutil.which("unshare")
    if (
        unshare is None
        or subprocess.run([unshare, "--fork", "--pid", "true"], capture_output=True).returncode
    ):
        pytest.skip("no PID namespace here (unshare --pid refused)")
    argv = [unshare, "--fork", "--pid", "--mount-proc", sys.executable, "-c", SCRIPT, str(tmp_path)]
    done = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=60, env={"PYTHONPATH": str(ROOT)}
    )
    assert done.returncode == 0, done.stderr
    words = done.stdout.split()
    assert words[:2] == ["pid", "1"] and int(words[3]) >= 6, done.stdout
    assert words[4:] == ["zombies", "0"], done.stdout
