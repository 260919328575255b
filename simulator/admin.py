"""A tiny HTTP endpoint to break a running simulator from another process (POST /faults/..., GET /ledger)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from simulator.faults import UnknownFault

if TYPE_CHECKING:
    from simulator import Simulator

USAGE = (
    "POST /faults/drop | /faults/outage?seconds=20 | /faults/stop-ping[?on=0] | /faults/stall[?on=0]"
    " | /faults/mute?topic=BTC-USDT@trade[&on=0]"
    " | /faults/garbage?kind=bad-gzip"
    "|bad-json|unknown-datatype|missing-fields | /faults/incr-skip[?count=N&symbol=S] | /faults/incr-repeat"
    " | /faults/incr-lose | /faults/incr-backward | /faults/incr-cross | /faults/incr-early"
    " | /faults/clear | /faults/expire-listen-keys (simulate --account) ; GET /ledger"
)


class AdminServer:
    """Serve fault knobs and the ledger summary on `host:port` (0 = a free port) in a thread."""

    def __init__(self, simulator: Simulator, host: str = "127.0.0.1", port: int = 0) -> None:
        self.simulator = simulator
        self._http = ThreadingHTTPServer((host, port), _handler_for(self))
        self._http.daemon_threads = True
        self.host, self.port = host, int(self._http.server_address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._http.serve_forever, name="simulator-admin", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def apply(self, fault: str, query: dict[str, str]) -> dict[str, Any]:
        """Run one fault knob by its URL name; return what happened."""
        faults = self.simulator.faults
        on = query.get("on", "1") not in ("0", "false", "no")
        count, symbol = int(query.get("count", "1")), query.get("symbol")
        if fault == "drop":
            return {"dropped": faults.drop()}
        if fault == "outage":
            return {"dropped": faults.outage(float(query.get("seconds", "20")))}
        if fault == "stop-ping":
            faults.stop_ping(on)
        elif fault == "stall":
            faults.stall(on)
        elif fault == "mute":
            if not query.get("topic"):
                raise UnknownFault(f"mute needs ?topic=SYMBOL@CHANNEL; {USAGE}")
            faults.mute(query["topic"], on)
        elif fault == "garbage":
            return {"sent_to": faults.garbage(query.get("kind", "bad_json"), query.get("topic"))}
        elif fault == "incr-skip":
            faults.incr_skip(count, symbol)
        elif fault == "incr-repeat":
            faults.incr_repeat(count, symbol)
        elif fault in ("incr-lose", "incr-backward", "incr-cross", "incr-early"):
            getattr(faults, fault.replace("-", "_"))(count, symbol)
        elif fault == "clear":
            faults.clear()
        elif fault == "expire-listen-keys" and self.simulator.account is not None:
            return {"expired": self.simulator.account.expire_listen_keys()}
        else:
            raise UnknownFault(f"unknown fault {fault!r}; {USAGE}")
        return {"ok": True}


def _handler_for(admin: AdminServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if urlsplit(self.path).path == "/ledger":
                self._reply(200, admin.simulator.ledger.summary())
            else:
                self._reply(404, {"error": USAGE})

        def do_POST(self) -> None:
            url = urlsplit(self.path)
            query = {key: values[-1] for key, values in parse_qs(url.query).items()}
            if not url.path.startswith("/faults/"):
                self._reply(404, {"error": USAGE})
                return
            try:
                self._reply(200, admin.apply(url.path.removeprefix("/faults/"), query))
            except (UnknownFault, ValueError) as error:
                self._reply(400, {"error": str(error)})

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep the CLI's output to the URLs it prints

    return Handler
