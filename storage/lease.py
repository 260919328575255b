"""One maintainer (compaction, prune, rebuild) per lake at a time: a lease file under `_compaction/`.

Several recorders may share a lake; whoever holds an unexpired lease works, the others skip or wait. The
lease expires unless renewed, so a killed holder blocks the others for at most `ttl_s` (not at all on its
own host: a lease whose process is gone is broken at once).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from types import TracebackType

from storage.errors import LeaseHeld
from storage.lake import Lake
from storage.layout import CONTROL


class Lease:
    """The lake's maintenance lease; a context manager that acquires it and releases it on exit.

    Local lakes create the file with O_EXCL (atomic), object stores with a conditional PUT (If-None-Match,
    storage.objectstore). Other filesystems write it and read it back, which is enough for recorders that
    start compaction minutes apart. Breaking an expired lease on an object store is a plain delete: two
    processes breaking the same expired lease at once may both win, and the loser stops at its next renew.
    """

    def __init__(self, lake: Lake, ttl_s: float = 600.0, clock: Callable[[], float] = time.time) -> None:
        self.lake = lake
        self.ttl_s = ttl_s
        self.clock = clock
        self.path = f"{lake.root}/{CONTROL}/lease.json"
        self.token = uuid.uuid4().hex
        self.owner = f"{socket.gethostname()}:{os.getpid()}"

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lease, or raise LeaseHeld naming the holder and when its lease expires."""
        self.lake.filesystem.create_dir(f"{self.lake.root}/{CONTROL}", recursive=True)
        for _ in range(3):
            if self._create():
                return
            held = self._read()
            expires = float(str(held.get("expires", 0))) if held is not None else 0.0
            if held is not None and expires > self.clock() and not self._is_dead(held):
                raise LeaseHeld(
                    f"{self.lake.root}: {held.get('owner')} holds the maintenance lease for "
                    f"{expires - self.clock():.0f}s more; run again later"
                )
            self._break(held)
        raise LeaseHeld(f"{self.lake.root}: could not take the maintenance lease; run again later")

    def renew(self) -> None:
        """Extend the lease; raise LeaseHeld if another process took it meanwhile (ours had expired)."""
        held = self._read()
        if held is None or held.get("token") != self.token:
            raise LeaseHeld(f"{self.lake.root}: the maintenance lease was taken over; stopping")
        self._write(replace=True)

    def release(self) -> None:
        held = self._read()
        if held is not None and held.get("token") == self.token:
            with contextlib.suppress(OSError):
                self.lake.filesystem.delete_file(self.path)

    def _body(self) -> bytes:
        body = {"owner": self.owner, "token": self.token, "expires": self.clock() + self.ttl_s}
        return json.dumps(body).encode()

    def _create(self) -> bool:
        if self.lake.is_local:
            try:
                handle = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                return False
            with os.fdopen(handle, "wb") as out:
                out.write(self._body())
            return True
        if self.lake.store is not None:  # a conditional PUT (If-None-Match): exactly one creator wins
            from storage.objectstore import create_exclusive

            return create_exclusive(self.lake.store, self.path, self._body())
        if self.lake.filesystem.get_file_info(self.path).is_file:
            return False
        self._write(replace=False)
        held = self._read()
        return held is not None and held.get("token") == self.token

    def _write(self, replace: bool) -> None:
        if self.lake.is_local and replace:
            temporary = f"{self.path}.{self.token}"
            with open(temporary, "wb") as out:
                out.write(self._body())
            os.replace(temporary, self.path)
            return
        with self.lake.filesystem.open_output_stream(self.path) as out:
            out.write(self._body())

    def _read(self) -> dict[str, object] | None:
        try:
            with self.lake.filesystem.open_input_stream(self.path) as handle:
                held: dict[str, object] = json.loads(handle.read())
                return held
        except (FileNotFoundError, ValueError, OSError):
            return None

    def _is_dead(self, held: dict[str, object]) -> bool:
        """Say whether the holder was a process of this host that no longer runs (a killed compactor)."""
        host, _, pid = str(held.get("owner", "")).rpartition(":")
        if host != socket.gethostname() or not pid.isdigit():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def _break(self, held: dict[str, object] | None) -> None:
        """Remove an expired (or unreadable) lease so that the next create can win it."""
        stale = f"{self.path}.stale-{self.token}"
        try:
            if not self.lake.is_local:
                self.lake.filesystem.delete_file(self.path)
                return
            os.rename(self.path, stale)  # only one breaker's rename of a given file succeeds
            with open(stale, "rb") as handle:
                moved = json.loads(handle.read() or b"{}")
            if held is not None and moved.get("token") != held.get("token"):
                with contextlib.suppress(FileExistsError):  # another breaker's fresh lease: put it back
                    os.link(stale, self.path)
            os.unlink(stale)
        except (OSError, ValueError):
            pass
