"""A local BingX REST server (threads) over a Market: envelopes, paging, rate limits, faults and a ledger.

Errors are HTTP 200 with BingX's codes; 429/418/5xx only from the limiter or injected faults (BINGX_API §15).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from simulator.endpoints import ApiError, Options, Request
from simulator.faults_rest import (
    BINGX_BUDGETS,
    Fault,
    RateLimiter,
    RestFaults,
    RestLedger,
    RestRequest,
    Verdict,
)
from simulator.market import Market
from simulator.routes import ROUTES
from simulator.signed import SIGNED_PATHS
from simulator.signed import answer as signed_answer

ADMIN_PATH = "/_simulator/faults"  # GET ?kind=fail&n=2&status=503&path=/openApi/... arms a fault
RATE_LIMIT_MSG = "Too many requests, please try again later (rate limited)"
BAN_MSG = "Your IP is temporarily banned for exceeding the rate limit"


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class RestServer:
    """BingX's public swap REST API on 127.0.0.1 (port 0 = a free port), served from threads."""

    def __init__(
        self,
        market: Market,
        host: str = "127.0.0.1",
        port: int = 0,
        clock_ms: Callable[[], int] = wall_clock_ms,
        options: Options | None = None,
        budget: int = 500,
        window_ms: int = 10_000,
        group_budget: int | None = None,
        ban_after: int = 5,
        ban_ms: int = 300_000,
        throttle_status: int = 429,
        limiter_clock_ms: Callable[[], int] | None = None,
        account: Any = None,  # a simulator.account.Account: serves the signed endpoints (simulator/signed.py)
        bingx_budgets: bool = False,
    ) -> None:
        self.market = market
        self.account = account
        self.clock_ms = clock_ms
        self.options = options or Options()
        self.throttle_status = (
            throttle_status  # 429 (default) or 200: how over-budget 100410 answers come back
        )
        self.limiter = RateLimiter(
            limiter_clock_ms or (lambda: time.monotonic_ns() // 1_000_000),
            budget,
            window_ms,
            group_budget,
            ban_after,
            ban_ms,
            BINGX_BUDGETS if bingx_budgets else (),  # market group 100/10 s and 500/min, klines 5/s
        )
        self.faults = RestFaults()
        self.ledger = RestLedger()
        self.stopping = threading.Event()
        self._httpd = ThreadingHTTPServer((host, port), _handler_for(self))
        self._httpd.daemon_threads = False  # server_close() joins request threads: no socket left behind
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> RestServer:
        """Serve from a daemon thread; return self."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, args=(0.05,), name="rest-simulator", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, wake slow answers, join every thread and close the socket."""
        self.stopping.set()
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()

    def __enter__(self) -> RestServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # ---- one request ----

    def answer(self, path: str, params: dict[str, str], client: str) -> tuple[int, Any, Verdict, str | None]:
        """Decide status, JSON body (None: drop the connection), rate-limit headers and fault kind."""
        fault = self.faults.take(path)
        kind = fault.kind if fault is not None else None
        if fault is not None and fault.kind == "slow":
            self.stopping.wait(fault.seconds)  # then answer normally; stop() wakes it
        elif fault is not None and fault.kind != "mangle":
            return (*self._faulted(fault), self.limiter.headers(client, path), kind)
        verdict = self.limiter.check(client, path)
        if verdict.banned:
            return 418, {"code": 100410, "msg": BAN_MSG, "data": None}, verdict, kind
        if not verdict.allowed:
            return self.throttle_status, {"code": 100410, "msg": RATE_LIMIT_MSG, "data": None}, verdict, kind
        status, body = self._served(path, params)
        if fault is not None and fault.kind == "mangle":
            _mangle(body, fault)
        return status, body, verdict, kind

    def _served(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        endpoint = ROUTES.get(path)
        if endpoint is None:
            return 200, {"code": 100400, "msg": "this api is not exist"}
        try:
            data = endpoint(Request(self.market, params, self.clock_ms(), self.options))
        except ApiError as error:
            return 200, {"code": error.code, "msg": error.msg}
        return 200, {"code": 0, "msg": "", "data": data}

    def _faulted(self, fault: Fault) -> tuple[int, Any]:
        if fault.kind == "fail":
            return fault.status, f"<html><body>{fault.status} injected failure</body></html>"
        if fault.kind == "rate_limit":
            return fault.status, {"code": 100410, "msg": RATE_LIMIT_MSG, "data": None}
        if fault.kind == "ban":
            return 418, {"code": 100410, "msg": BAN_MSG, "data": None}
        if fault.kind == "error":
            return 200, {"code": fault.code, "msg": fault.msg}
        return 0, None  # drop

    def admin(self, params: dict[str, str]) -> tuple[int, Any]:
        """Arm a fault from HTTP (for the CLI simulator): kind, n, path, status, seconds, code, msg."""
        try:
            options: dict[str, Any] = {"path": params.get("path") or None}
            casts = (("status", int), ("seconds", float), ("code", int), ("msg", str), ("field", str))
            for name, cast in (*casts, ("value", str), ("index", int)):
                if name in params:
                    options[name] = cast(params[name])
            self.faults.arm(params.get("kind", ""), int(params.get("n", "1")), **options)
        except ValueError as error:
            return 400, {"code": 400, "msg": str(error)}
        return 200, {"code": 0, "msg": "", "data": {"armed": params.get("kind")}}


def _mangle(body: Any, fault: Fault) -> None:
    data = body.get("data") if isinstance(body, dict) else None
    items: list[Any] = data if isinstance(data, list) else [data]
    item = items[fault.index] if 0 <= fault.index < len(items) else None
    if isinstance(item, dict):
        item[fault.field] = fault.value


def _rows(body: Any) -> int:
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(data, list):
        return len(data)
    return 0 if data is None else 1


def _wire(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _handler_for(server: RestServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # one request per connection: no idle keep-alive threads at shutdown
        server_version = "bingx-simulator"

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            if server.account is not None and url.path in SIGNED_PATHS:
                self._signed("GET")
                return
            if url.path == ADMIN_PATH:
                status, body = server.admin(params)
                self._send(status, body, None)
                return
            client = self.client_address[0]
            status, body, verdict, fault = server.answer(url.path, params, client)
            code = body.get("code") if isinstance(body, dict) else None
            record = RestRequest(
                url.path, params, status, code, _rows(body), client, server.clock_ms(), fault
            )
            server.ledger.record(record)
            if body is None:
                self.close_connection = True  # the "drop" fault: no status line at all
                return
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._send(status, body, verdict)  # a client that gave up (slow fault) needs no answer

        def do_POST(self) -> None:
            self._signed("POST")

        def do_PUT(self) -> None:
            self._signed("PUT")

        def do_DELETE(self) -> None:
            self._signed("DELETE")

        def _signed(self, method: str) -> None:
            url = urlsplit(self.path)
            params = dict(parse_qsl(url.query, keep_blank_values=True))
            length = int(self.headers.get("Content-Length") or 0)
            if length:  # BingX's body form: the signed parameters as one JSON object
                with contextlib.suppress(ValueError):
                    body = json.loads(self.rfile.read(length))
                    params.update({k: _wire(v) for k, v in body.items()} if isinstance(body, dict) else {})
            if server.account is None or url.path not in SIGNED_PATHS:
                status, answer = 200, {"code": 100400, "msg": "this api is not exist"}
            else:
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, answer = signed_answer(
                    server.account, method, url.path, params, url.query, headers, server.clock_ms()
                )
            code = answer.get("code") if isinstance(answer, dict) else None
            code = code if isinstance(code, int) else None
            shown = {k: v for k, v in params.items() if k != "listenKey"}  # a bearer credential
            record = RestRequest(
                url.path, shown, status, code, _rows(answer), self.client_address[0], server.clock_ms(), None
            )
            server.ledger.record(record)
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                self._send(status, answer, None)

        def _send(self, status: int, body: Any, verdict: Verdict | None) -> None:
            payload = (body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if not isinstance(body, str) else "text/html")
            self.send_header("Content-Length", str(len(payload)))
            if verdict is not None:
                self.send_header("x-ratelimit-requests-remain", str(verdict.remain))
                self.send_header("x-ratelimit-requests-expire", str(verdict.expire_ms))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the ledger is the record; stderr noise would drown test output

    return Handler
