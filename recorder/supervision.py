"""The recorder watches its converter: a converter that dies is restarted with backoff, and one that keeps
dying ends the run with ConverterFailed (a non-zero exit) instead of a recorder with a dead lake."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from exchange.backoff import backoff
from recorder.errors import ConverterFailed

log = logging.getLogger(__name__)

MAX_DEATHS = 4  # within WINDOW_S: then the cause is not passing (a bad --journal-archive, a bug)
WINDOW_S = 300.0
FIRST_RESTART_S = 0.5
MAX_RESTART_S = 30.0


class Converter(Protocol):
    def finish(self, timeout_s: float) -> None: ...
    def death(self) -> str | None: ...


class Supervisor:
    """Owns the running converter; `check` (called about once a second) notices a death and restarts it."""

    def __init__(
        self,
        start: Callable[[], Converter],
        clock: Callable[[], float] = time.monotonic,
        max_deaths: int = MAX_DEATHS,
        window_s: float = WINDOW_S,
    ) -> None:
        self._start = start
        self.clock = clock
        self.max_deaths = max_deaths
        self.window_s = window_s
        self.deaths: deque[float] = deque()
        self.restarts = 0
        self._delays = backoff(FIRST_RESTART_S, 2.0, MAX_RESTART_S)
        self._restart_at: float | None = None
        self.converter: Converter | None = start()

    def check(self) -> None:
        """Restart a dead converter once its backoff is over; raise ConverterFailed if it keeps dying."""
        now = self.clock()
        if self.converter is None:
            if self._restart_at is not None and now >= self._restart_at:
                self._restart_at = None
                self.restarts += 1
                self.converter = self._start()
            return
        cause = self.converter.death()
        if cause is None:
            return
        self.converter = None
        while self.deaths and now - self.deaths[0] > self.window_s:
            self.deaths.popleft()
        if not self.deaths:
            self._delays = backoff(FIRST_RESTART_S, 2.0, MAX_RESTART_S)  # it had been healthy
        self.deaths.append(now)
        if len(self.deaths) >= self.max_deaths:
            raise ConverterFailed(
                f"the journal converter died {len(self.deaths)} times within {self.window_s:.0f} s "
                f"(last: {cause}; its error is logged above), so the lake stopped updating; the journal "
                "keeps every frame: fix the cause and start again"
            )
        wait = next(self._delays)
        log.error(
            "converter died (%s); restarting it in %.1f s (%d deaths within %.0f s; %d end the run)",
            cause,
            wait,
            len(self.deaths),
            self.window_s,
            self.max_deaths,
        )
        self._restart_at = now + wait

    def finish(self, timeout_s: float) -> None:
        """Stop the converter after its last seal (nothing to do while it is dead)."""
        if self.converter is not None:
            self.converter.finish(timeout_s)
