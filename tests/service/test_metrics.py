"""A real `record --metrics` process against the simulator: /metrics parsed by prometheus-client's own parser
agrees with the simulator's ledger, and /health follows a topic the simulator mutes and resumes."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service import status
from simulator import Simulator
from storage.gaps import tolerance_s
from tests.recorder.procs import record

SYMBOLS = ("BTC-USDT", "ETH-USDT")
CHANNELS = ("trade", "depth20@500ms")
MUTED = "BTC-USDT@depth20@500ms"


def until(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        found = condition()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what}: not within {timeout_s:g} s"
        time.sleep(0.1)


def scrape(url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """sample name -> {sorted labels: value}, through prometheus-client's text parser."""
    with urllib.request.urlopen(url + "/metrics", timeout=5) as answer:
        text = answer.read().decode()
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def health(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url + "/health", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def per_channel(samples: dict[tuple[tuple[str, str], ...], float]) -> dict[str, float]:
    return {dict(labels)["channel"]: value for labels, value in samples.items()}


def ledger_per_channel(sim: Simulator) -> dict[str, float]:
    found: dict[str, float] = {}
    for topic, count in sim.ledger.counts.items():
        channel = topic.partition("@")[2]
        found[channel] = found.get(channel, 0) + count
    return found


@pytest.mark.slow
def test_metrics_agree_with_the_ledger_and_health_follows_a_muted_topic(tmp_path: Path) -> None:
    with Simulator(symbols=SYMBOLS, ping_interval_s=1.0) as sim:
        extra = ("--metrics", "127.0.0.1:0", "--lake-interval", "1", "--no-heal", "--compact-every", "0")
        process = record(sim, tmp_path, SYMBOLS, CHANNELS, *extra, stderr=subprocess.PIPE)
        try:
            document = until(
                lambda: (
                    (d := status.read(tmp_path))
                    and len(d.get("topics", {})) == 4
                    and all(t["frames"] for t in d["topics"].values())
                    and d
                ),
                30,
                "every topic flowing in the status file",
            )
            url = document["metrics_url"]
            assert health(url)[0] == 200

            samples = until(
                lambda: (
                    (s := scrape(url))
                    .get("bingx_recorder_rows_written_total", {})
                    .get((("dataset", "trades"), ("source", "stream")))
                    and s
                ),
                15,
                "trades rows written",
            )
            assert set(per_channel(samples["bingx_recorder_frames_received_total"])) == set(CHANNELS)
            assert samples["bingx_recorder_bytes_received_total"][()] > 0
            assert per_channel(samples["bingx_recorder_lag_seconds_count"])["trade"] > 0
            ages = samples["bingx_recorder_last_frame_age_seconds"]
            assert {dict(labels)["topic"] for labels in ages} == {
                f"{s}@{c}" for s in SYMBOLS for c in CHANNELS
            }

            muted_at = time.monotonic()
            sim.faults.mute(MUTED)
            _, body = until(
                lambda: (answer := health(url))[0] == 503 and answer,
                tolerance_s("depth20@500ms") + 5,
                "/health 503 after the mute",
            )
            # not before the tolerance: the topic's last frame came at most one push (0.5 s) before the mute
            assert time.monotonic() - muted_at > tolerance_s("depth20@500ms") - 1
            assert [entry["topic"] for entry in body["stale"]] == [MUTED]

            sim.faults.mute(MUTED, on=False)
            until(lambda: health(url)[0] == 200, 10, "/health 200 after the topic resumed")

            sim.faults.stall()  # no more pushes: what was sent is received, then the counts stand still
            until(
                lambda: (
                    per_channel(scrape(url)["bingx_recorder_frames_received_total"])
                    == ledger_per_channel(sim)
                ),
                10,
                f"frames_received_total == the ledger's {ledger_per_channel(sim)}",
            )
        finally:
            process.send_signal(signal.SIGINT)
            _, stderr = process.communicate(timeout=20)
        assert process.returncode == 0, stderr.decode()[-2000:]
