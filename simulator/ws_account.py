"""The account stream on the simulator's socket: `/swap-market?listenKey=<key>` gets every account event
while its key is valid, `listenKeyExpired` once it is not, and the usual gzip Ping (BINGX_API.md §25).

Runs on the WebSocket server's loop; `push` and `expired` are called from other threads through it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from exchange.signing import short_hash
from simulator import wire
from simulator.ledger import ConnectionRecord
from simulator.ws_session import Client

if TYPE_CHECKING:
    from simulator.account import Account
    from simulator.ws import WsServer


def listen_key_of(conn: ServerConnection) -> str | None:
    """The listenKey in the connection's URL, or None for a market-data socket."""
    path = conn.request.path if conn.request is not None else ""
    keys = parse_qs(urlsplit(path).query).get("listenKey")
    return keys[0] if keys else None


class AccountStreams:
    """Sockets by listenKey; delivers events to those whose key is valid."""

    def __init__(self, server: WsServer, account: Account) -> None:
        self.server = server
        self.account = account
        self.sockets: dict[str, set[Client]] = {}
        account.pusher = self.push
        account.on_expired = self.expired

    async def handle(self, conn: ServerConnection, key: str) -> None:
        import asyncio

        server = self.server
        client = Client(server._next_id, conn)
        server._next_id += 1
        server.clients[client.id] = client  # so the drop fault cuts account sockets too
        peer = ":".join(str(part) for part in conn.remote_address[:2])
        server.ledger.open(ConnectionRecord(client.id, peer, server.clock()))
        self.sockets.setdefault(key, set()).add(client)
        heartbeat = asyncio.create_task(server._heartbeat(client))
        if not self.account.is_valid(key):  # an unknown or expired key: told at once, socket left open
            server.write(client, _expired_frame(key, server.clock()))
        try:
            async for message in conn:
                if message == "Pong":
                    client.last_pong = time.monotonic()
                    server.ledger.bump(client.id, "pongs_received")
        except ConnectionClosed:
            pass
        finally:
            heartbeat.cancel()
            self.sockets.get(key, set()).discard(client)
            del server.clients[client.id]
            reason = client.close_reason or "connection lost"
            server.ledger.update(client.id, closed_ms=server.clock(), close_reason=reason)

    def push(self, message: dict[str, Any]) -> tuple[str, ...]:
        """Deliver one event to every socket with a valid key (any thread); return those keys' hashes."""
        if self.server._loop is None:
            return ()
        return self.server.call(self._deliver, message)

    def _deliver(self, message: dict[str, Any]) -> tuple[str, ...]:
        frame = wire.encode(message)[1]
        delivered = []
        for key, clients in self.sockets.items():
            if not self.account.is_valid(key):
                continue
            if any([self.server.write(client, frame) for client in list(clients)]):
                delivered.append(short_hash(key))
        return tuple(delivered)

    def expired(self, key: str) -> None:
        """Tell the key's sockets it expired (any thread); they get nothing more until a new key is used."""
        if self.server._loop is None:
            return
        self.server.call(self._tell_expired, key)

    def _tell_expired(self, key: str) -> None:
        frame = _expired_frame(key, self.server.clock())
        for client in list(self.sockets.get(key, ())):
            self.server.write(client, frame)


def _expired_frame(key: str, now_ms: int) -> bytes:
    return wire.encode({"e": "listenKeyExpired", "E": now_ms, "listenKey": key})[1]
