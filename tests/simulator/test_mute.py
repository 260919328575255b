"""The mute fault: one topic stops while the socket, its Pings and the other topics go on (admin-settable)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from simulator import Simulator


def post(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_admin_endpoint_mutes_and_resumes_one_topic() -> None:
    with Simulator(symbols=["BTC-USDT"], admin_port=0) as sim:
        assert post(f"{sim.admin_url}/faults/mute?topic=BTC-USDT@trade")[0] == 200
        assert sim.faults.muted == {"BTC-USDT@trade"}
        assert post(f"{sim.admin_url}/faults/mute?topic=BTC-USDT@trade&on=0")[0] == 200
        assert sim.faults.muted == set()
        code, body = post(f"{sim.admin_url}/faults/mute")
        assert code == 400 and "topic" in str(body["error"])
        sim.faults.mute("BTC-USDT@trade")
        sim.faults.clear()
        assert sim.faults.muted == set()
        assert [what for _, what, _ in sim.ledger.events].count("mute") == 4
