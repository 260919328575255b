"""A scripted HTTP server on 127.0.0.1:0: answers from a queue, records every request it got."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest


@dataclass(frozen=True)
class Answer:
    status: int = 200
    body: bytes = b'{"code":0,"msg":"","data":[]}'
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0


@dataclass(frozen=True)
class Seen:
    path: str
    query: dict[str, str]
    raw_query: str
    headers: dict[str, str]


def envelope(data: Any = None, code: int | str = 0, msg: str = "") -> bytes:
    return json.dumps({"code": code, "msg": msg, "data": data}).encode()


def limit_headers(remain: int, expire_ms: int) -> tuple[tuple[str, str], ...]:
    return (("X-RateLimit-Requests-Remain", str(remain)), ("X-RateLimit-Requests-Expire", str(expire_ms)))


@dataclass
class ScriptedServer:
    answers: deque[Answer] = field(default_factory=deque)
    seen: list[Seen] = field(default_factory=list)
    url: str = ""

    def script(self, *answers: Answer) -> None:
        self.answers.extend(answers)


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins handler threads: nothing outlives the test
    script: ScriptedServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out closed its socket before our late answer; expected in timeout tests


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        script = self.server.script
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        script.seen.append(Seen(parts.path, query, parts.query, dict(self.headers.items())))
        answer = script.answers.popleft() if script.answers else Answer(599, b"no scripted answer")
        if answer.delay_s:
            time.sleep(answer.delay_s)
        self.send_response(answer.status)
        for name, value in answer.headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    script = ScriptedServer()
    httpd = _Server(("127.0.0.1", 0), _Handler)
    httpd.script = script
    script.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield script
    finally:
        httpd.shutdown()
        thread.join()
        httpd.server_close()
