"""/health's rule is the completeness work's silence tolerance per channel; the document's own age counts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from recorder.stats import exchange_ms
from service.health import STALE_DOCUMENT_S, verdict
from storage.gaps import TOLERANCE_S, tolerance_s

NOW = 1_800_000_000.0
PAYLOADS = Path(__file__).parents[1] / "payloads"


def document(**ages: float | None) -> dict[str, Any]:
    """A status document whose topics' last frames are `ages` seconds old (None: no frame yet)."""
    topics = {
        topic.replace("__", "@").replace("_", "-", 1): {
            "channel": topic.split("__")[1],
            "last_frame_at": None if age is None else NOW - age,
        }
        for topic, age in ages.items()
    }
    return {"written_at": NOW - 1, "started_at": NOW - 5, "topics": topics}


def test_a_quiet_trade_topic_is_fresh_within_its_tolerance_and_a_silent_depth_topic_is_not() -> None:
    code, body = verdict(document(BTC_USDT__trade=40.0, BTC_USDT__depth20=11.0, ETH_USDT__incrDepth=1.0), NOW)
    assert code == 503
    assert [(s["topic"], s["tolerance_s"]) for s in body["stale"]] == [("BTC-USDT@depth20", 10.0)]
    code, body = verdict(document(BTC_USDT__trade=59.0, BTC_USDT__depth20=9.0), NOW)
    assert (code, body["status"], body["stale"]) == (200, "ok", [])


def test_a_topic_without_a_frame_yet_ages_from_the_process_start() -> None:
    assert verdict(document(BTC_USDT__depth20=None), NOW)[0] == 200  # started 5 s ago
    late = {**document(BTC_USDT__depth20=None), "started_at": NOW - 11}
    assert verdict(late, NOW)[0] == 503


def test_an_old_or_missing_status_document_is_not_healthy() -> None:
    old = {**document(BTC_USDT__trade=1.0), "written_at": NOW - STALE_DOCUMENT_S - 1}
    assert verdict(old, NOW)[0] == 503 and "gone or stuck" in verdict(old, NOW)[1]["reason"]
    assert verdict(None, NOW)[0] == 503


@pytest.mark.parametrize(
    "channel", ["trade", "kline_1m", "depth20@500ms", "incrDepth", "ticker", "bookTicker"]
)
def test_the_tolerance_is_the_gap_rules(channel: str) -> None:
    expected = next((s for prefix, s in TOLERANCE_S.items() if channel.startswith(prefix)), 30.0)
    assert tolerance_s(channel) == expected


@pytest.mark.parametrize(
    ("name", "channel", "expected"),
    [
        ("ws_trade", "trade", 1759994162450),
        ("ws_depth5", "depth5@500ms", 1759996742928),
        ("ws_incr_depth_update", "incrDepth", 1790127587285),
        ("ws_ticker", "ticker", 1759998119388),
        ("ws_book_ticker", "bookTicker", 1714650946618),
        ("ws_mark_price", "markPrice", 1760001628357),
        ("ws_last_price", "lastPrice", 1760001029063),
        ("ws_kline_1m", "kline_1m", None),  # T is the bar's open time, not when it was sent
    ],
)
def test_the_lag_reads_each_channels_exchange_time(name: str, channel: str, expected: int | None) -> None:
    assert exchange_ms(channel, (PAYLOADS / f"{name}.json").read_bytes()) == expected


def test_a_server_without_a_document_of_its_own_reads_the_status_file(tmp_path: Path) -> None:
    """The `run` service's case: its record child writes the file, the service answers /health from it."""
    import time

    from service.metrics import serve
    from service.status import STATUS, write_file
    from tests.service.test_metrics import health

    server = serve("127.0.0.1:0", tmp_path)
    try:
        url = f"http://{server.address}"
        assert health(url)[0] == 503  # no file yet
        fresh = {**document(BTC_USDT__trade=1.0), "written_at": time.time(), "started_at": time.time()}
        fresh["topics"]["BTC-USDT@trade"]["last_frame_at"] = time.time()
        write_file(tmp_path / STATUS, fresh)
        assert health(url) == (200, {"status": "ok", "topics": 1, "stale": []})
    finally:
        server.close()
