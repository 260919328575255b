"""The account stream recorded in-process: every delivered event once, expiry and reconnects as gaps."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from exchange.signed import SignedClient
from exchange.signing import Credentials, short_hash
from recorder.account import AccountOptions as AccountStreamOptions
from recorder.account import AccountStream
from recorder.runner import Recorder
from schemas.account_stream import event_id
from simulator import Simulator
from simulator.account import AccountOptions
from storage.lake import Lake
from storage.state import State
from tests.recorder.account_rows import all_landed, rows_of, rows_per_event
from tests.recorder.conftest import FAST, options, query, recording, wait_for

ACCOUNT = AccountOptions(history_days=2, fill_every_s=0.15, settle_every_s=0.5)


def _factory(
    sim: Simulator, data_dir: Path, connection: Any, options: AccountStreamOptions | None = None
) -> Any:
    client = SignedClient(sim.rest_url or "", Credentials(ACCOUNT.api_key, ACCOUNT.secret), attempts=3)
    client.measure_offset()

    def build(journal: Any, receiver: Any, name: str) -> AccountStream:
        state, lake = State(data_dir / "state"), Lake(data_dir / "lake")
        return AccountStream(client, sim.ws_url, journal, state, lake, name, connection, receiver, options)

    return build


def test_every_delivered_event_lands_once_across_a_listen_key_expiry(tmp_path: Path) -> None:
    with Simulator(symbols=["BTC-USDT", "ETH-USDT"], account=ACCOUNT, **FAST) as sim:
        account = sim.account
        opts = options(sim, [], [], lake_interval_s=0.5)
        recorder = Recorder(tmp_path, opts, account=_factory(sim, tmp_path, opts.connection))
        with recording(tmp_path, opts, recorder):
            wait_for(lambda: sum(bool(e.delivered_to) for e in account.events) >= 6)
            assert account.expire_listen_keys() == 1
            account.trade()  # pushed before the recorder can have a new key: nobody gets it
            wait_for(lambda: len(account.listen_keys) >= 2 and account.events[-1].delivered_to != ())
            wait_for(lambda: sum(bool(e.delivered_to) for e in account.events) >= 14)
            account.paused = True
            account.configure("BTC-USDT", 20)
            wait_for(lambda: all_landed(tmp_path / "lake", account.events))
        events = list(account.events)
        keys = set(account.listen_keys) | account.expired_notified
    lake = tmp_path / "lake"
    landed = rows_per_event(lake)
    delivered = [e for e in events if e.delivered_to]
    missed = [e for e in events if not e.delivered_to]
    assert all(landed[event_id(e.message)] == rows_of(e) for e in delivered)
    assert set(landed) <= {event_id(e.message) for e in events}
    steps = Counter(
        r["event"] for r in query(lake, "SELECT event FROM stream_events WHERE topic = 'account'")
    )
    assert steps["listen_key_created"] >= 2 and steps["listen_key_expired"] == 1
    assert steps["listen_key_deleted"] == 1
    if missed:  # events pushed while the key was dead are a listed gap, reconciled from REST income
        assert steps["gap"] >= 1 and steps["reconciled"] >= 1
        income = {r["tran_id"] for r in query(lake, "SELECT tran_id FROM income")}
        assert {i for e in missed for i in e.income_ids} <= income
    expired = query(lake, "SELECT text FROM raw_messages WHERE text LIKE '%listenKeyExpired%'")
    assert [
        r["text"].count(short_hash(key)) for r in expired for key in keys if short_hash(key) in r["text"]
    ] == [1]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            if path.suffix == ".parquet":  # compressed: search the decoded values, not the bytes
                content = str(pq.read_table(path).to_pylist()).encode()
            assert not any(key.encode() in content for key in keys), path


def test_a_key_the_exchange_dropped_is_found_by_the_next_extend_and_replaced(tmp_path: Path) -> None:
    with Simulator(symbols=["BTC-USDT"], account=ACCOUNT, **FAST) as sim:
        account = sim.account
        opts = options(sim, [], [], lake_interval_s=0.5)
        fast = AccountStreamOptions(extend_every_s=0.3)
        recorder = Recorder(tmp_path, opts, account=_factory(sim, tmp_path, opts.connection, fast))
        with recording(tmp_path, opts, recorder):
            wait_for(lambda: sum(r.path.endswith("userDataStream") for r in sim.rest_ledger.requests) >= 3)
            first = next(iter(account.listen_keys))
            account.delete_listen_key(first)  # gone server-side, without a listenKeyExpired push
            wait_for(lambda: len(account.listen_keys) == 1 and first not in account.listen_keys)
            wait_for(lambda: bool(account.events) and bool(account.events[-1].delivered_to))
    steps = Counter(
        r["event"]
        for r in query(tmp_path / "lake", "SELECT event FROM stream_events WHERE topic = 'account'")
    )
    assert steps["listen_key_extended"] >= 1 and steps["listen_key_lost"] == 1, steps
    assert steps["listen_key_created"] >= 2 and steps["reconnect"] >= 1, steps
    methods = Counter(r.params.get("timestamp") is None for r in sim.rest_ledger.requests)
    assert methods[True] >= 4  # the listenKey calls carry the API key header only, no signature


def test_a_record_config_may_hold_the_credentials_and_account_alone_needs_no_topics(tmp_path: Path) -> None:
    from cli import record_values
    from recorder.command import Endpoints, options_from

    config = tmp_path / "record.toml"
    config.write_text('lake-interval = 5\n[credentials]\napi_key = "k"\napi_secret = "s"\n')
    endpoints = Endpoints(tmp_path, "http://127.0.0.1:9", "ws://127.0.0.1:9/swap-market")
    opts, _ = options_from(record_values({"config": config}), endpoints, account=True)
    assert opts.symbols == [] and list(opts.channels) == [] and opts.lake_interval_s == 5


def test_record_account_without_a_secret_is_one_line_and_exit_1(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cli import main

    argv = ["--data-dir", str(tmp_path), "record", "--account", "--duration", "1"]
    env = {"BINGX_API_KEY": "some-key", "BINGX_API_SECRET": "", "BINGX_CONFIG": ""}
    result = CliRunner().invoke(main, argv, env=env)
    assert result.exit_code == 1 and result.output.count("\n") == 1 and "no API secret" in result.output
    assert not (tmp_path / "journal").exists()  # refused before anything started
