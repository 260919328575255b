"""1,000 topics: sharded at 200 per connection, every topic acked, data for every topic lands."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from recorder.errors import TopicError
from recorder.topics import Pacer, shard, topics_for
from simulator import Simulator
from tests.recorder.conftest import options, query, recording, wait_for

SYMBOLS = [f"S{n:03d}-USDT" for n in range(250)]
CHANNELS = ["markPrice", "depth5@500ms", "depth10@200ms", "depth20@500ms"]  # cheap for the simulator


def test_shard_keeps_each_group_under_the_cap_and_refuses_past_60_connections() -> None:
    topics = topics_for(SYMBOLS, CHANNELS)
    groups = shard(topics, 200)
    assert [len(g) for g in groups] == [200] * 5
    assert [t for g in groups for t in g] == topics
    assert [len(g) for g in shard(topics, 150)] == [150] * 6 + [100]
    with pytest.raises(TopicError, match="60 per IP"):
        shard(topics * 4, 50)
    with pytest.raises(TopicError, match=r"1\.\.200"):
        shard(topics, 201)


def test_pacer_allows_one_subscription_per_interval() -> None:
    now = [0.0]
    pacer = Pacer(per_second=8.0, clock=lambda: now[0])
    taken = 0
    for _ in range(800):  # 10 simulated seconds in steps of 12.5 ms
        taken += pacer.try_take()
        now[0] += 0.0125
    assert taken in (80, 81)


@pytest.mark.slow
def test_a_thousand_topics_are_sharded_acked_and_recorded(tmp_path: Path) -> None:
    topics = topics_for(SYMBOLS, CHANNELS)
    # A generous Pong deadline: with 250 symbols the simulator's loop can pause for seconds while warming up.
    with Simulator(
        symbols=SYMBOLS, seed=2, trades_per_second=0.5, ping_interval_s=0.5, pong_timeout_s=60.0
    ) as sim:
        opts = options(
            sim, SYMBOLS, CHANNELS, silence_timeout_s=20.0, subscribes_per_second=400.0, converter="process"
        )
        with recording(tmp_path, opts) as recorder:
            wait_for(lambda: sum(len(c.acked) for c in recorder.connections) == len(topics), 40)
            wait_for(lambda: all(sim.ledger.counts.get(t, 0) >= 1 for t in topics), 40)
            time.sleep(0.5)
            assert len(recorder.connections) == 5
            records = sim.ledger.connections
            assert len(records) == 5 and all(len(r.topics) == 200 and not r.refused for r in records)
    rows = query(tmp_path / "lake", "SELECT DISTINCT topic FROM raw_messages WHERE topic IS NOT NULL")
    assert sorted(r["topic"] for r in rows) == sorted(topics)
    acked = query(
        tmp_path / "lake", "SELECT count(DISTINCT topic) AS n FROM stream_events WHERE event = 'subscribed'"
    )
    assert acked[0]["n"] == 1000
    for table in ("mark_prices", "depth_snapshots"):
        symbols = query(tmp_path / "lake", f"SELECT count(DISTINCT symbol) AS n FROM {table}")[0]["n"]
        assert symbols == 250, table
