"""Account frames in the journal (control records, no dataType) land in their datasets; a malformed one goes
to _rejects under its dataset and does not stop the batch."""

from __future__ import annotations

from pathlib import Path

from recorder.convert import Converter
from storage.journal import CONTROL, JournalWriter
from tests.conftest import PAYLOADS
from tests.recorder.conftest import query

T0_US = 1_717_200_000_000_000
FRAMES = [
    (PAYLOADS / "ws_account_update.json").read_bytes().strip(),
    (PAYLOADS / "ws_order_trade_update.json").read_bytes().strip(),
    (PAYLOADS / "ws_account_config_update.json").read_bytes().strip(),
    (PAYLOADS / "ws_listen_key_expired.json").read_bytes().strip(),
    b'{"e":"ORDER_TRADE_UPDATE","E":1676973375999,"o":{"s":"LINK-USDT"}}',
]


def test_account_frames_land_in_their_datasets_and_a_bad_one_in_rejects(tmp_path: Path) -> None:
    with JournalWriter(tmp_path / "journal") as journal:
        for copy in range(2):  # a replay: the views still show each event once
            for seq, frame in enumerate(FRAMES):
                journal.append(T0_US + seq, f"acct-{copy}", seq, CONTROL, frame)
    converter = Converter(tmp_path)
    converter.drain()
    lake = tmp_path / "lake"
    assert len(query(lake, "SELECT * FROM account_updates")) == 2
    assert [r["order_id"] for r in query(lake, "SELECT order_id FROM order_updates")] == [
        "1627970445070303232"
    ]
    assert len(query(lake, "SELECT * FROM account_config_updates")) == 1
    assert converter.rejects[("order_updates", "conversion failed")] == 2
    assert list((lake / "_rejects" / "order_updates").rglob("*.parquet"))
    assert len(query(lake, "SELECT * FROM raw_messages")) == 2 * len(FRAMES)  # raw first, all of them
