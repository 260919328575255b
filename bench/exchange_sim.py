"""Start the local simulator for a benchmark, passing only the knobs this version of it supports."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parent.parent


def simulator(**wanted: Any) -> tuple[Any, list[str]]:
    """Build (not start) a Simulator from the supported subset of `wanted`; return it and what it dropped."""
    from simulator import Simulator

    parameters = inspect.signature(Simulator).parameters
    accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    given = {name: value for name, value in wanted.items() if accepts_any or name in parameters}
    return Simulator(**given), sorted(set(wanted) - set(given))


def has_command(*words: str) -> str | None:
    """None when `bingx-recorder <words> --help` works, else the reason it does not."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "cli", *words, "--help"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as error:
        return f"cannot run the CLI: {error}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"`bingx-recorder {' '.join(words)}` is not available yet ({last})"
    return None


def cli(data_dir: Path, sim: Any, *words: str) -> list[str]:
    """The command line that runs our CLI against the simulator."""
    # Without a simulated REST server, point REST at a closed local port: never at the real exchange.
    urls = ["--ws-url", sim.ws_url, "--rest-url", sim.rest_url or "http://127.0.0.1:9"]
    return [sys.executable, "-m", "cli", "--data-dir", str(data_dir), *urls, "--log-level", "WARNING", *words]
