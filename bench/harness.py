"""Figures, repeated timing and the results file. Knows nothing about what is being measured."""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
CACHE = RESULTS / ".cache"  # bench/results/ is gitignored; generated lakes and ccxt live here
PACKAGES = ("pyarrow", "duckdb", "orjson", "websocket-client", "websockets", "ccxt")


@dataclass(frozen=True)
class Figure:
    """One measured number: the median of its runs with min/max, or unavailable with the reason."""

    section: str
    name: str
    unit: str
    median: float | None
    low: float | None = None
    high: float | None = None
    runs: int = 0
    note: str = ""
    target: str = ""  # the figure the issues ask for, e.g. ">= 30000"; shown next to the measurement

    @property
    def available(self) -> bool:
        return self.median is not None


@dataclass(frozen=True)
class Config:
    """What every section gets: sizes, repetitions and where it may write."""

    quick: bool = False
    smoke: bool = False  # tiny sizes for the harness's own tests: seconds, no figure worth reading
    profile: bool = False  # run the recorder under cProfile in the ingest section
    repeats: int = 5
    cache: Path = CACHE
    work: Path = field(default_factory=lambda: CACHE / "work")


Section = Callable[[Config], list[Figure]]


def figure(section: str, name: str, unit: str, samples: list[float], **extra: Any) -> Figure:
    """Summarise samples as median, min and max."""
    if not samples:
        return unavailable(section, name, unit, extra.pop("note", "no samples"), **extra)
    return Figure(
        section, name, unit, statistics.median(samples), min(samples), max(samples), len(samples), **extra
    )


def unavailable(section: str, name: str, unit: str, reason: str, **extra: Any) -> Figure:
    """Say a figure could not be measured, and why; never a made-up number."""
    return Figure(section, name, unit, None, note=" ".join(reason.split())[:300], **extra)


def seconds(action: Callable[[], object], repeats: int) -> list[float]:
    """Time `action` `repeats` times (perf_counter), returning the seconds of each run."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        samples.append(time.perf_counter() - start)
    return samples


def rates(action: Callable[[], object], units: int, repeats: int) -> list[float]:
    """Time `action` (which processes `units` items) and return items per second of each run."""
    return [units / elapsed for elapsed in seconds(action, repeats) if elapsed > 0]


def machine() -> dict[str, Any]:
    """Describe the box: results from different machines are not comparable."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in PACKAGES},
    }


def write_results(
    figures: list[Figure], sections: dict[str, str], started: datetime, directory: Path = RESULTS
) -> Path:
    """Write <directory>/<UTC timestamp>.json with every figure, section status and machine facts."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    document = {
        "started": started.isoformat(),
        "finished": datetime.now(UTC).isoformat(),
        "machine": machine(),
        "sections": sections,
        "figures": [asdict(item) for item in figures],
    }
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(document, indent=2) + "\n")
    partial.rename(path)
    return path


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        module = sys.modules.get(name)
        return getattr(module, "__version__", None) if module else None


def _cpu_model() -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None
