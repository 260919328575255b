"""The account stream (BINGX_API.md §25): the listenKey life cycle and one socket on `?listenKey=<key>`.

Create (POST) before each session, extend (PUT) every 30 minutes, recreate on `listenKeyExpired`, on a failed
extend, after an expiry window without one, and after every reconnect; delete (DELETE) on shutdown. Every
step is a stream_events row. Frames are journaled first, like every other frame; the converter turns them into
account_updates / order_updates / account_config_updates. Time without a live socket is a `gap` row, and the
income it covers is fetched from REST (`reconciled` row). The listenKey is a bearer credential: logs, events
and the journal carry only its short hash.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from exchange.errors import ExchangeError
from exchange.signed import SignedClient
from exchange.signing import redact, redact_request_logs, short_hash
from recorder.connection import Connection, ConnectionOptions, NoSocket
from recorder.receiver import Receiver
from recorder.session import Actions, Session
from recorder.topics import Pacer
from storage.journal import JournalWriter
from storage.lake import Lake
from storage.state import State

log = logging.getLogger(__name__)

LISTEN_KEY_PATH = "/openApi/user/auth/userDataStream"
TOPIC = "account"  # the stream_events topic of every account-stream row
LIVE_STATE = "account_stream"  # state/account_stream.json: {"live_ms": last instant a socket was live}
# After a crash the last events before it may have been in the socket, unread: the gap starts this much
# earlier than the last saved live instant (which is itself up to live_every_s old).
CRASH_MARGIN_MS = 2000
_EXPIRED = b'"listenKeyExpired"'
EXPIRED = "listenKey expired"


@dataclass(frozen=True)
class AccountOptions:
    extend_every_s: float = 1800.0  # BingX: valid 60 min, extend every ~30 min
    live_every_s: float = 1.0  # how often the live instant is saved (bounds the gap after a kill -9)
    reconcile_margin_ms: int = 2000  # income fetched this far either side of a gap


class ListenKeys:
    """Create, extend and delete listenKeys over signed REST; report every step through `emit`.

    Lock-guarded: the connection's thread renews the key while the account stream's thread extends it.
    """

    def __init__(self, client: SignedClient, emit: Callable[[str, str], None]) -> None:
        self.client = client
        self.emit = emit  # (event, detail) -> a stream_events row
        self.current: str | None = None
        self.extended_at = 0.0
        self._known: set[str] = set()  # every key this run had: hidden in any text we pass on
        self._lock = threading.RLock()  # one step at a time: never extend a key being replaced

    def create(self) -> str:
        with self._lock:
            body = self.client.send("POST", LISTEN_KEY_PATH)
            wrapped = body.get("data")
            data = wrapped if isinstance(wrapped, dict) else body  # wrapped or bare (§27.8)
            key = str(data.get("listenKey") or "")
            if not key:
                raise ExchangeError(f"POST {LISTEN_KEY_PATH}: no listenKey in the answer")
            self.current, self.extended_at = key, time.monotonic()
            self._known.add(key)
            self.emit("listen_key_created", short_hash(key))
            return key

    def renew(self) -> str:
        """Delete the current key (best effort) and create a new one."""
        with self._lock:
            self.delete()
            return self.create()

    def extend(self) -> bool:
        """PUT the current key; False (and the key dropped) when BingX no longer knows it."""
        with self._lock:
            key = self.current
            if key is None:
                return False
            try:
                self.client.send("PUT", LISTEN_KEY_PATH, {"listenKey": key})
            except ExchangeError as error:
                self.emit("listen_key_lost", f"{short_hash(key)}: extend failed: {self.hide(str(error))}")
                self.current = None
                return False
            self.extended_at = time.monotonic()
            self.emit("listen_key_extended", short_hash(key))
            return True

    def delete(self) -> None:
        with self._lock:
            key, self.current = self.current, None
            if key is None:
                return
            try:
                self.client.send("DELETE", LISTEN_KEY_PATH, {"listenKey": key})
            except ExchangeError as error:  # it expires by itself within the hour
                self.emit("listen_key_delete_failed", f"{short_hash(key)}: {self.hide(str(error))}")
                return
            self.emit("listen_key_deleted", short_hash(key))

    def expired(self) -> None:
        """BingX said the key expired: nothing to DELETE; the next socket creates a new one."""
        with self._lock:
            self.current = None

    def hide(self, text: str) -> str:
        for key in tuple(self._known):  # a copy: another thread may add a key meanwhile
            text = text.replace(key, short_hash(key))
        return redact(text)


class Liveness:
    """Whether the account socket is live, and the spans it was not (lock-guarded: the receiver marks it,
    the account stream's thread reads it and reconciles the gaps)."""

    def __init__(self, dark_since_ms: int | None) -> None:
        self._lock = threading.Lock()
        self.live = False
        self.dark_since_ms = dark_since_ms  # None: nothing to account for before the first socket
        self.gaps: queue.Queue[tuple[int, int]] = queue.Queue()

    def went_live(self) -> None:
        with self._lock:
            self.live = True
            if self.dark_since_ms is not None:
                self.gaps.put((self.dark_since_ms, _now_ms()))
            self.dark_since_ms = None

    def went_dark(self) -> None:
        with self._lock:
            if self.live:
                self.live = False
                self.dark_since_ms = _now_ms()


class AccountSession(Session):
    """A session without topics that hides its socket's listenKey and ends the socket when it expires."""

    def __init__(self, name: str, options: ConnectionOptions, liveness: Liveness) -> None:
        super().__init__(name, [], options)
        self.liveness = liveness
        self.key: str | None = None  # the listenKey of the socket open now, read off its URL

    def opened(self, now: float, attempt: int, url: str) -> Actions:
        self.key = url.partition("listenKey=")[2] or None
        return super().opened(now, attempt, url)

    def _event(
        self, event: str, topic: str | None = None, code: int | None = None, detail: str | None = None
    ) -> None:
        super()._event(event, topic or TOPIC, code, self._hide(detail) if detail else detail)
        if event in ("connect", "reconnect"):
            self.liveness.went_live()
        elif event in ("disconnect", "silence"):
            self.liveness.went_dark()

    def _hide(self, text: str) -> str:
        key = self.key
        return redact(text.replace(key, short_hash(key)) if key else text)

    def _control(self, text: bytes) -> None:
        if _EXPIRED not in text:
            super()._control(text)
            return
        key = self.key
        if key is not None:  # journaled with the key's hash in its place: the journal holds no credential
            text = text.replace(key.encode(), short_hash(key).encode())
        super()._control(text)
        self._event("listen_key_expired", detail=short_hash(key) if key else None)
        self.liveness.went_dark()
        self._out.end = EXPIRED  # not at once: frames already read behind this one are journaled first


class AccountConnection(Connection):
    """A Connection without topics whose URL carries a fresh listenKey for every socket."""

    def __init__(
        self,
        name: str,
        journal: JournalWriter,
        options: ConnectionOptions,
        client: SignedClient,
        receiver: Receiver | None,
        dark_since_ms: int | None,
    ) -> None:
        self.liveness = Liveness(dark_since_ms)
        super().__init__(name, [], journal, options, receiver=receiver)
        self.base_url = options.url.split("?", 1)[0]
        self.keys = ListenKeys(client, lambda event, detail: self.event(event, detail=detail))

    def _new_session(self, topics: Iterable[str], shared_pacer: Pacer | None) -> Session:
        return AccountSession(self.name, self.options, self.liveness)

    def event(
        self, event: str, topic: str | None = None, code: int | None = None, detail: str | None = None
    ) -> None:
        super().event(event, topic or TOPIC, code, self.keys.hide(detail) if detail else detail)

    def _url(self, attempt: int) -> str:
        try:
            key = self.keys.renew() if attempt or self.keys.current is None else self.keys.current
        except ExchangeError as error:
            reason = f"listenKey: {self.keys.hide(str(error))}"
            self.event("listen_key_failed", detail=reason)
            raise NoSocket(reason) from None
        return f"{self.base_url}?listenKey={key}"

    def _socket(self, receiver: Receiver, attempt: int) -> str:
        reason = super()._socket(receiver, attempt)
        if reason == EXPIRED:
            self.keys.expired()
        return reason


class AccountStream:
    """Owns the account connection and the thread that extends keys, saves the live instant and
    reconciles gaps from REST income."""

    def __init__(
        self,
        client: SignedClient,
        ws_url: str,
        journal: JournalWriter,
        data_dir_state: State,
        lake: Lake,
        name: str,
        connection: ConnectionOptions,
        receiver: Receiver | None = None,
        options: AccountOptions | None = None,
    ) -> None:
        redact_request_logs("recorder.connection", __name__, "websocket")
        self.client, self.lake, self.state = client, lake, data_dir_state
        self.options = options or AccountOptions()
        saved = self.state.read(LIVE_STATE) or {}
        dark_since = saved.get("live_ms")
        if dark_since is not None and not saved.get("clean"):
            dark_since -= CRASH_MARGIN_MS
        self.connection = AccountConnection(
            name,
            journal,
            replace(connection, url=ws_url),
            client,
            receiver,
            dark_since_ms=dark_since,
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"account-{name}", daemon=True)

    def start(self) -> None:
        """Create the first listenKey (errors raise here, before anything runs), then connect."""
        self.connection.keys.create()
        self.connection.start()
        self._thread.start()

    def stop(self) -> None:
        """Close the socket, reconcile a pending gap, DELETE the key; every step journaled before return."""
        self._stop.set()
        self.connection.stop()
        self.connection.join(2.0)
        self._thread.join(5.0)
        self._reconcile_pending()
        dark = self.connection.liveness.dark_since_ms
        if dark is not None:  # the next run reconciles from the moment this socket closed
            self._save_live(dark, clean=True)
        # One quick try: SIGTERM to exit stays within seconds; an undeleted key expires within the hour.
        self.client.attempts, self.client.timeout_s = 1, 2.0
        self.connection.keys.delete()

    def _run(self) -> None:
        options = self.options
        next_live = 0.0
        while not self._stop.wait(0.1):
            now = time.monotonic()
            connection = self.connection
            if connection.liveness.live and now >= next_live:
                next_live = now + options.live_every_s
                self._save_live(_now_ms())
            keys = connection.keys
            if keys.current is not None and now - keys.extended_at >= options.extend_every_s:
                # A failed extend (404, or no answer) replaces the key at once: there is never an hour
                # without a successful extend on a key still in use.
                if not keys.extend():
                    connection.cut("listenKey extend failed")
                self._remeasure()
            self._reconcile_pending()

    def _remeasure(self) -> None:
        """Re-measure the server's clock offset (weeks-long runs drift); a failure keeps the old one."""
        try:
            self.client.measure_offset()
        except ExchangeError as error:
            log.warning("account stream: server time not measured: %s", self.connection.keys.hide(str(error)))

    def _save_live(self, live_ms: int, clean: bool = False) -> None:
        try:
            self.state.write(LIVE_STATE, {"live_ms": live_ms, "clean": clean})
        except OSError as error:
            log.warning("account stream: cannot save the live instant: %s", error)

    def _reconcile_pending(self) -> None:
        while True:
            try:
                start_ms, end_ms = self.connection.liveness.gaps.get_nowait()
            except queue.Empty:
                return
            self._reconcile(start_ms, end_ms)

    def _reconcile(self, start_ms: int, end_ms: int) -> None:
        """A gap row, then the income REST has for it (written to the lake) and a `reconciled` row."""
        from backfill.account import backfill_income

        connection = self.connection
        connection.event("gap", detail=f"no live account socket from {_iso(start_ms)} to {_iso(end_ms)}")
        margin = self.options.reconcile_margin_ms
        now_ms = int(self.client.wall_clock() * 1000)
        try:
            summary = backfill_income(
                self.client, self.lake, None, start_ms - margin, end_ms + margin, now_ms + margin, settle_ms=0
            )
        except (ExchangeError, OSError) as error:
            connection.event("reconcile_failed", detail=connection.keys.hide(str(error)))
            return
        detail = f"income from REST for {_iso(start_ms)}..{_iso(end_ms)}: {summary.rows} rows"
        connection.event("reconciled", code=summary.rows, detail=detail)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")
