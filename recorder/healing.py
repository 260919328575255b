"""What `record` does over REST besides listing symbols: heal closed outage windows, keep contracts refreshes.

Both run beside the recording and never stop it: a failed pass is logged once per kind and retried later.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from backfill.heal import HEALABLE, Healer, plan
from exchange.ratelimit import SharedLimiter
from exchange.rest import RestClient
from schemas import DATASETS
from storage.gaps import outages, recent_sql
from storage.lake import Lake, lake_at
from storage.state import State
from storage.views import connect

log = logging.getLogger(__name__)

HEAL_EVERY_S = 60.0
RECENT = timedelta(hours=6)  # after a first full pass, each pass looks at this much of the lake
REST_BUDGET = "state/rest-budget.json"  # the host's one REST budget (cli.rest_budget uses the same file)


def keep_contracts(lake: Lake, envelope: Mapping[str, Any]) -> int:
    """Write one /quote/contracts answer to the contracts dataset (source='poll'); return the rows written."""
    contracts = DATASETS["contracts"]
    assert contracts.from_rest is not None
    rows = contracts.from_rest(envelope, {})
    now = datetime.now(UTC)
    for row in rows:
        row["received_at"], row["source"] = now, "poll"
    lake.write(contracts, rows)
    return len(rows)


class AutoHeal:
    """A thread that, every `every_s`, heals the outage windows that have closed and settled."""

    def __init__(
        self,
        data_dir: Path,
        rest_url: str,
        every_s: float = HEAL_EVERY_S,
        datasets: Sequence[str] = HEALABLE,
        lake: str = "",  # --lake: a path or s3://...; "" is <data-dir>/lake
        owns: Callable[[str], bool] | None = None,  # --shard: heal only this shard's symbols
    ) -> None:
        self.data_dir, self.rest_url, self.every_s, self.datasets = data_dir, rest_url, every_s, datasets
        self.lake, self.owns = lake, owns
        self.passes = 0
        self.rows = 0
        self.failures = 0  # passes that raised (service/metrics.py counts them)
        self.last_at: float | None = None  # wall clock of the last pass that finished
        self.last_rows = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="auto-heal", daemon=True)
        self._failures: set[str] = set()

    def start(self) -> AutoHeal:
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.heal_once()
            except Exception as error:  # healing must never stop the recording
                self.failures += 1
                kind = type(error).__name__
                if kind not in self._failures:
                    self._failures.add(kind)
                    log.warning(
                        "automatic healing failed (%s: %s); retrying every %.0f s", kind, error, self.every_s
                    )

    def heal_once(self) -> int:
        """Run one heal pass over the lake's outage windows; return the rows written."""
        lake = lake_at(self.data_dir, self.lake)
        with connect(lake.root) as con:
            recent = recent_sql(datetime.now(UTC) - RECENT) if self.passes else None
            found = outages(con) if recent is None else outages(con, recent)
        # A shared lake shows every shard's outages; each shard heals its own, so no window is fetched twice
        found = [outage for outage in found if self.owns is None or self.owns(outage.symbol)]
        limiter = SharedLimiter(self.data_dir / REST_BUDGET)
        with RestClient(self.rest_url, limiter=limiter) as client:
            healer = Healer(client, lake, State(self.data_dir / "state"))
            summary = healer.run(plan(found, self.datasets))
        self.passes += 1
        self.rows += summary.rows
        self.last_at, self.last_rows = time.time(), summary.rows
        if summary.rows or summary.beyond_history:
            log.info("%s", summary.line())
        return summary.rows
