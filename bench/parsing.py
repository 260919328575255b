"""Parsing side by side: the same gzip frames through our converters and through ccxt's BingX handlers.

Two comparisons per kind: wire to rows (each library's own gunzip and JSON parser, as it runs live), and the
converter/handler alone on the same parsed dicts. Each pair is timed back to back so that ratios share noise.
"""

from __future__ import annotations

import statistics
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench import frames as frame_builder
from bench import rival
from bench.harness import Config, Figure, figure, unavailable

SECTION = "parsing"
DATASET_OF = {"trade": "trades", "depth20": "depth_snapshots", "ticker": "tickers"}
Step = Callable[[Any], object]


def run(config: Config, allow_install: bool = True, ccxt_target: Path = rival.TARGET) -> list[Figure]:
    """Frames/s for each kind, ours and ccxt's, wire-to-rows and handler-only, with the ratios."""
    count = 30 if config.smoke else 1_000 if config.quick else 10_000
    built = {kind: frame_builder.build(kind, count) for kind in frame_builder.KINDS}
    converters = _converters()
    if isinstance(converters, str):
        return [unavailable(SECTION, "our converters", "frames/s", converters)]
    handlers = _ccxt(built, allow_install, ccxt_target)
    figures: list[Figure] = []
    cost_us: dict[str, list[float]] = {"ours": [], "ccxt": []}
    for kind, data in built.items():
        ours = (_our_wire(converters[kind]), converters[kind])
        theirs = None if isinstance(handlers, str) else (handlers[0][kind], handlers[1][kind])
        kind_figures = _compare(kind, data, ours, theirs, config.repeats)
        figures += (
            kind_figures
            if theirs
            else [
                *kind_figures,
                unavailable(SECTION, f"{kind}: ccxt.pro bingx handler", "frames/s", str(handlers)),
            ]
        )
        for side, name in (("ours", f"{kind}: ours wire->rows"), ("ccxt", f"{kind}: ccxt wire->handled")):
            cost_us[side] += [1e6 / item.median for item in kind_figures if item.name == name and item.median]
    return figures + _mixed(cost_us, handlers)


def _compare(
    kind: str,
    data: frame_builder.Frames,
    ours: tuple[Step, Step],
    theirs: tuple[Step, Step] | None,
    repeats: int,
) -> list[Figure]:
    note = f"{len(data.wire)} frames from {data.template_source}; {data.rows_per_frame:.1f} rows/frame"
    figures = []
    for stage, inputs, index in (("wire->", data.wire, 0), ("parsed dict->", data.messages, 1)):
        steps = [ours[index]] if theirs is None else [ours[index], theirs[index]]
        runs = _interleaved(steps, inputs, repeats)
        ours_name = f"{kind}: ours {stage}rows" if index == 0 else f"{kind}: ours from_stream only"
        figures.append(figure(SECTION, ours_name, "frames/s", runs[0], note=note))
        if theirs is None:
            continue
        their_name = (
            f"{kind}: ccxt {stage}handled" if index == 0 else f"{kind}: ccxt {rival.HANDLERS[kind]} only"
        )
        figures.append(figure(SECTION, their_name, "frames/s", runs[1], note=note))
        ratios = [mine / other for mine, other in zip(runs[0], runs[1], strict=True)]
        label = "wire->rows" if index == 0 else "converter vs handler"
        figures.append(figure(SECTION, f"{kind}: ours / ccxt ({label})", "x", ratios, note="same-run pairs"))
    return figures


def _mixed(cost_us: dict[str, list[float]], handlers: object) -> list[Figure]:
    """Cost of one frame of an equal trade/depth20/ticker mix, wire to rows, from the per-kind medians."""
    ours_us = statistics.mean(cost_us["ours"])
    result = [
        figure(SECTION, "mixed frame wire->rows: ours", "µs/frame", [ours_us], note="mean of the 3 kinds")
    ]
    if isinstance(handlers, str) or not cost_us["ccxt"]:
        return [*result, unavailable(SECTION, "mixed frame: ccxt", "µs/frame", str(handlers))]
    ccxt_us = statistics.mean(cost_us["ccxt"])
    result.append(
        figure(
            SECTION,
            "mixed frame wire->handled: ccxt",
            "µs/frame",
            [ccxt_us],
            note="mean of the 3 kinds; DESIGN.md measured ≈ 83",
        )
    )
    result.append(figure(SECTION, "mixed frame: ccxt cost / ours", "x", [ccxt_us / ours_us]))
    return result


def _converters() -> dict[str, Step] | str:
    try:
        from schemas import DATASETS
    except ImportError as error:
        return f"schemas not importable yet: {error}"
    found: dict[str, Step] = {}
    for kind, name in DATASET_OF.items():
        convert = DATASETS[name].from_stream
        if convert is None:
            return f"{name} has no from_stream converter"
        found[kind] = convert
    return found


def _our_wire(convert: Step) -> Step:
    def path(wire: bytes) -> object:
        # the recorder journals the text, so the bytes are decoded as it does
        return convert(orjson.loads(zlib.decompress(wire, 31).decode()))

    return path


def _ccxt(
    built: dict[str, frame_builder.Frames], allow_install: bool, target: Path
) -> tuple[dict[str, Step], dict[str, Step]] | str:
    """(wire paths, handler-only paths) per kind through ccxt.pro's bingx, or the reason it cannot run."""
    try:
        ccxt = rival.load(allow_install=allow_install, target=target)
        symbols = sorted({m["dataType"].partition("@")[0] for data in built.values() for m in data.messages})
        instance = rival.exchange(ccxt, symbols)
        gunzip, loads = rival.wire_decoder(ccxt)
        client = rival.Client()
        direct = {kind: _bound(rival.handler(instance, kind), client) for kind in built}
        wire = {kind: _composed(gunzip, loads, direct[kind]) for kind in built}
        for kind, data in built.items():  # prove each handler runs offline before timing it
            wire[kind](data.wire[0])
        return wire, direct
    except Exception as error:  # any failure of a third-party tool is a reason, not a crash
        return f"ccxt unavailable: {type(error).__name__}: {error}"


def _bound(handle: Callable[[rival.Client, Any], None], client: rival.Client) -> Step:
    def path(message: Any) -> object:
        handle(client, message)
        return None

    return path


def _composed(gunzip: Callable[[bytes], str], loads: Callable[[str], Any], handle: Step) -> Step:
    def path(wire: bytes) -> object:
        return handle(loads(gunzip(wire)))

    return path


def _interleaved(steps: list[Step], inputs: list[Any], repeats: int) -> list[list[float]]:
    """Items/s of each step over `inputs`, timed back to back in each repeat: ratios share the noise."""
    samples: list[list[float]] = [[] for _ in steps]
    for _ in range(repeats):
        for index, step in enumerate(steps):
            start = time.perf_counter()
            for item in inputs:
                step(item)
            samples[index].append(len(inputs) / (time.perf_counter() - start))
    return samples
