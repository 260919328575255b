"""Window paging over BingX history endpoints, whatever order the pages come in. No disk, no threads.

Time-paged endpoints (klines, mark klines, funding): every request asks for a bounded range
[wanted - 1, chunk_end] that can hold at most `limit` items, so it does not matter whether the server
picks the first or the last `limit` items of a longer range, nor whether startTime/endTime are inclusive
(BINGX_API.md §7-8: all UNCONFIRMED). Items are sorted and deduped here and kept only when their time
lies in [wanted, chunk_end). An empty chunk means the exchange has nothing there (a gap, or the end of
its history); the walk moves to the next chunk, so the whole window is always asked for.

Id-paged historical trades (§12): fromId = wanted - 1, keep ids >= wanted (inclusive or exclusive, both
work), ascending by id after sorting; ids may have gaps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from backfill.errors import PagingError

T = TypeVar("T")
Fetch = Callable[[dict[str, Any]], list[T]]  # query params -> converted items (rows)

MAX_TIME_LIMIT = 1000  # BINGX_API.md §8: docs say 1440, 1000 is what a tested client uses
MAX_TRADES_LIMIT = 100  # BINGX_API.md §12


@dataclass(frozen=True)
class Page(Generic[T]):
    """New items of one response, sorted by time (or id) and deduped, plus how far the walk has got.

    `covered_to_ms`: every item of the window with a time below it is in this page or an earlier one.
    `next_id` (trades only): the id the walk would ask for next.
    """

    items: list[T]
    covered_to_ms: int
    next_id: int | None = None


def time_pages(
    fetch: Fetch[T],
    time_of: Callable[[T], int],
    start_ms: int,
    end_ms: int,
    *,
    step_ms: int,
    limit: int,
    path: str,
    spacing_ms: int | None = None,
) -> Iterator[Page[T]]:
    """Yield the items with time in [start_ms, end_ms), each exactly once, one page per request.

    `step_ms` is the least distance between two items' times (bars: the interval's shortest length), so
    the next page starts at the last time + step_ms. `spacing_ms` (default step_ms) sizes the requested
    range: no `limit` items are expected closer together than that (funding: step 1 ms, spacing 1 h).
    Raises PagingError when a response ignores the requested range.
    """
    if not 2 <= limit <= MAX_TIME_LIMIT:
        raise ValueError(f"limit must be in 2..{MAX_TIME_LIMIT}, got {limit}")
    if step_ms < 1:
        raise ValueError(f"step_ms must be >= 1, got {step_ms}")
    span_ms = (limit - 1) * (spacing_ms or step_ms)  # [wanted-1, wanted+span] holds <= `limit` items
    wanted = start_ms
    while wanted < end_ms:
        chunk_end = min(end_ms, wanted + span_ms)
        params = {"startTime": wanted - 1, "endTime": chunk_end, "limit": limit}
        returned = fetch(dict(params))
        times = [time_of(item) for item in returned]
        strays = [t for t in times if t < wanted - 1 or t > chunk_end]
        if strays:
            raise PagingError(
                f"{path} {params}: the response ignored the requested range: {len(returned)} items, "
                f"times {min(times)}..{max(times)}; refusing to guess where the window continues"
            )
        items = _sorted_unique([i for i in returned if wanted <= time_of(i) < chunk_end], time_of)
        # Either way the walk advances: items are >= wanted and step_ms >= 1.
        wanted = time_of(items[-1]) + step_ms if items else chunk_end
        yield Page(items, covered_to_ms=min(wanted, end_ms))


def id_pages(
    fetch: Fetch[T],
    id_of: Callable[[T], int],
    time_of: Callable[[T], int],
    first_id: int,
    end_ms: int,
    *,
    limit: int = MAX_TRADES_LIMIT,
    path: str,
) -> Iterator[Page[T]]:
    """Yield trades with id >= first_id and time < end_ms, ascending by id, each exactly once.

    The walk stops at the first trade at or after end_ms (its id becomes `next_id`) or when the
    exchange has no newer trade (then the window is complete: callers keep end_ms behind the clock).
    """
    if not 2 <= limit <= MAX_TRADES_LIMIT:
        raise ValueError(f"limit must be in 2..{MAX_TRADES_LIMIT}, got {limit}")
    wanted = first_id
    covered = -1
    while True:
        params = {"fromId": max(wanted - 1, 0), "limit": limit}
        returned = fetch(dict(params))
        _check_from_id(path, params, [id_of(item) for item in returned], wanted)
        fresh = _sorted_unique([i for i in returned if id_of(i) >= wanted], id_of)
        if not fresh:
            yield Page([], covered_to_ms=end_ms, next_id=wanted)
            return
        inside = [i for i in fresh if time_of(i) < end_ms]
        if len(inside) < len(fresh):
            yield Page(inside, covered_to_ms=end_ms, next_id=id_of(fresh[len(inside)]))
            return
        covered = max(covered, time_of(inside[-1]))  # same-ms trades with higher ids may follow
        wanted = id_of(inside[-1]) + 1
        yield Page(inside, covered_to_ms=covered, next_id=wanted)


def first_id_at(
    fetch: Fetch[T], id_of: Callable[[T], int], time_of: Callable[[T], int], since_ms: int, *, path: str
) -> int | None:
    """Find the smallest trade id whose time is >= since_ms; None if every trade is older.

    Trade times never decrease with ids, so a search over ids works: the newest trades bound it from
    above, a step that doubles walks down until a trade older than since_ms is seen, then bisection.
    A probe asks fromId=x and uses the first returned trade with id >= x, so id gaps do not matter.
    Invariants: every trade below `low` is older than since_ms; `best` is a trade at or after since_ms;
    no trade id lies in [high, best).
    """
    newest = _sorted_unique(fetch({"limit": MAX_TRADES_LIMIT}), id_of)
    if not newest or time_of(newest[-1]) < since_ms:
        return None
    if time_of(newest[0]) < since_ms:  # the answer is inside the newest page
        return min(id_of(i) for i in newest if time_of(i) >= since_ms)
    best = high = id_of(newest[0])
    low, step = 0, MAX_TRADES_LIMIT
    while high - step > 0:
        at = high - step
        found, found_ms = _probe(fetch, id_of, time_of, at, best, path)
        if found_ms < since_ms:
            low = found + 1
            break
        best, high, step = found, at, step * 2
    while low < high:
        middle = (low + high) // 2
        found, found_ms = _probe(fetch, id_of, time_of, middle, best, path)
        if found_ms >= since_ms:
            best, high = found, middle
        else:
            low = found + 1
    return best


def _probe(
    fetch: Fetch[T], id_of: Callable[[T], int], time_of: Callable[[T], int], at: int, known: int, path: str
) -> tuple[int, int]:
    """Return (id, time) of the first trade with id >= at; trade `known` >= at exists, so one must."""
    params = {"fromId": max(at - 1, 0), "limit": 3}
    returned = fetch(dict(params))
    _check_from_id(path, params, [id_of(i) for i in returned], at)
    found = sorted((id_of(i), time_of(i)) for i in returned if id_of(i) >= at)
    if not found:
        raise PagingError(f"{path} {params}: no trade returned although trade id {known} exists")
    return found[0]


def _check_from_id(path: str, params: Mapping[str, Any], ids: list[int], wanted: int) -> None:
    """Refuse a page that ignored fromId: any id below wanted - 1 cannot be an answer to it."""
    if ids and min(ids) < wanted - 1:
        raise PagingError(
            f"{path} {dict(params)}: the page did not advance: {len(ids)} trades, "
            f"ids {min(ids)}..{max(ids)}, below the requested {wanted}"
        )


def _sorted_unique(items: list[T], key: Callable[[T], int]) -> list[T]:
    """Sort by key and keep the first item of each key (a later page repeating one is the same fact)."""
    unique: dict[int, T] = {}
    for item in items:
        unique.setdefault(key(item), item)
    return [unique[k] for k in sorted(unique)]
