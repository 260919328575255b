"""The limiter: never more than a budget in any fixed window, yet close to the full budget over a long run."""

from __future__ import annotations

import bisect
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exchange.ratelimit import BINGX_BUDGETS, Budget, Limiter, SharedLimiter
from tests.exchange.fakes import FakeClock

KLINES = "/openApi/swap/v3/quote/klines"
MARKET_PATHS = (
    KLINES,
    "/openApi/swap/v1/market/markPriceKlines",
    "/openApi/swap/v2/quote/fundingRate",
    "/openApi/swap/v1/market/historicalTrades",
)


def most_in_any_window(times: list[float], window_s: float) -> int:
    """The largest number of times inside one window [t, t + window_s) of ANY phase.

    A fixed server window holding k requests starts at or before its first one, so it fits inside
    [first, first + window_s): checking every request as a window start covers every fixed window.
    """
    times = sorted(times)
    return max((bisect.bisect_left(times, t + window_s) - i for i, t in enumerate(times)), default=0)


def budget_counts(budgets: tuple[Budget, ...], sent: list[tuple[str, float]]) -> list[tuple[Budget, int]]:
    """For each budget and scope, the busiest window seen."""
    result: list[tuple[Budget, int]] = []
    for budget in budgets:
        scopes: dict[str, list[float]] = defaultdict(list)
        for path, t in sent:
            if budget.applies_to(path):
                scopes[path if budget.per_endpoint else "*"].append(t)
        result.extend((budget, most_in_any_window(times, budget.window_s)) for times in scopes.values())
    return result


def run(limiter: Limiter, clock: FakeClock, paths: list[str], gaps: list[float]) -> list[tuple[str, float]]:
    sent = []
    for path, gap in zip(paths, gaps, strict=True):
        clock.now += gap
        sent.append((path, limiter.acquire(path)))
    return sent


SMALL = (
    Budget("group", 7, 10.0, ("/openApi/swap/",)),
    Budget("minute", 20, 60.0, ("/openApi/swap/",)),
    Budget("endpoint", 4, 10.0, per_endpoint=True),
    Budget("klines", 2, 1.0, (KLINES,), per_endpoint=True),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(MARKET_PATHS), st.one_of(st.just(0.0), st.floats(0.0, 15.0))),
        min_size=1,
        max_size=120,
    ),
    st.floats(0.0, 0.5),
)
def test_no_budget_is_ever_exceeded_in_any_fixed_window(
    requests: list[tuple[str, float]], margin_s: float
) -> None:
    clock = FakeClock()
    limiter = Limiter(SMALL, clock=clock, sleep=clock.sleep, margin_s=margin_s)
    sent = run(limiter, clock, [path for path, _ in requests], [gap for _, gap in requests])
    assert len(sent) == len(requests)
    for budget, busiest in budget_counts(SMALL, sent):
        assert busiest <= budget.limit, budget.name


@pytest.mark.parametrize(
    ("paths", "rate_per_s"),
    [(MARKET_PATHS, 500 / 60), ((KLINES,), 5.0), (("/openApi/swap/v2/quote/depth",), 500 / 60)],
)
def test_a_long_greedy_run_uses_at_least_90_percent_of_the_binding_budget(
    paths: tuple[str, ...], rate_per_s: float
) -> None:
    clock = FakeClock()
    limiter = Limiter.bingx_default(clock=clock, sleep=clock.sleep)
    start = clock.now
    count = 6000
    sent = run(limiter, clock, [paths[i % len(paths)] for i in range(count)], [0.0] * count)
    elapsed = clock.now - start
    assert count / elapsed >= 0.9 * rate_per_s
    for budget, busiest in budget_counts(BINGX_BUDGETS, sent):
        assert busiest <= budget.limit, budget.name


def test_the_server_saying_fewer_remain_drains_our_count_until_its_window_ends() -> None:
    clock = FakeClock()
    limiter = Limiter([Budget("endpoint", 500, 10.0, per_endpoint=True)], clock=clock, sleep=clock.sleep)
    limiter.observe(KLINES, 2, 5000)
    limiter.acquire(KLINES)
    limiter.acquire(KLINES)
    assert clock.sleeps == []
    limiter.acquire("/openApi/swap/v2/quote/depth")  # another endpoint's count is untouched
    assert clock.sleeps == []
    limiter.acquire(KLINES)
    assert clock.sleeps == [5.0]


def test_zero_remaining_waits_out_the_expire_time() -> None:
    clock = FakeClock()
    limiter = Limiter([], clock=clock, sleep=clock.sleep)
    limiter.observe(KLINES, 0, 7250)
    limiter.acquire(KLINES)
    limiter.acquire(KLINES)
    assert clock.sleeps == [7.25]


def test_the_server_saying_more_remain_does_not_loosen_our_budget() -> None:
    clock = FakeClock()
    limiter = Limiter(
        [Budget("endpoint", 3, 10.0, per_endpoint=True)], clock=clock, sleep=clock.sleep, margin_s=0
    )
    for _ in range(3):
        limiter.acquire(KLINES)
    limiter.observe(KLINES, 499, 10000)
    limiter.acquire(KLINES)
    assert clock.sleeps == [10.0]


def test_requests_sent_after_the_answered_one_are_subtracted_from_its_remain() -> None:
    clock = FakeClock()
    limiter = Limiter([], clock=clock, sleep=clock.sleep)
    first = limiter.acquire(KLINES)
    clock.now += 0.01
    limiter.acquire(KLINES)
    clock.now += 0.01
    limiter.acquire(KLINES)  # two in flight that the server had not counted when it answered the first
    limiter.observe(KLINES, 3, 4000, sent_at=first)
    limiter.acquire(KLINES)
    assert clock.sleeps == []
    limiter.acquire(KLINES)
    assert clock.sleeps == [4.0]


def test_answers_arriving_out_of_order_keep_the_lowest_remain_of_a_window() -> None:
    clock = FakeClock()
    limiter = Limiter([], clock=clock, sleep=clock.sleep)
    limiter.observe(KLINES, 1, 6000)
    limiter.observe(KLINES, 5, 5990)  # an older answer, same window
    limiter.acquire(KLINES)
    limiter.acquire(KLINES)
    assert clock.sleeps == [pytest.approx(5.99)]


def test_threads_sharing_a_limiter_never_exceed_the_budget_together() -> None:
    budget = Budget("group", 10, 0.1)
    limiter = Limiter([budget], margin_s=0.02)
    sent: list[tuple[str, float]] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(15):
            t = limiter.acquire(KLINES)
            with lock:
                sent.append((KLINES, t))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(sent) == 60
    assert most_in_any_window([t for _, t in sent], budget.window_s) <= budget.limit
    assert all(t <= time.monotonic() for _, t in sent)


def test_bad_budgets_are_refused() -> None:
    with pytest.raises(ValueError):
        Budget("none", 0, 10.0)
    with pytest.raises(ValueError):
        Limiter([], margin_s=-1)


def test_shared_limiters_on_one_file_draw_from_one_budget(tmp_path: Path) -> None:
    clock = FakeClock(1_700_000_000.0)
    budgets = (Budget("group", 3, 10.0),)
    first, second = (SharedLimiter(tmp_path / "budget.json", budgets, clock, clock.sleep) for _ in range(2))
    sent = [first.acquire(KLINES), second.acquire(KLINES), first.acquire(KLINES), second.acquire(KLINES)]
    assert sent[:3] == [1_700_000_000.0] * 3  # the budget's three, whichever limiter asked
    assert sent[3] >= 1_700_000_010.0  # the fourth waited out the window the other limiter filled
    assert second.seconds_waited >= 10.0 and first.seconds_waited == 0


def test_shared_limiter_processes_never_exceed_the_budget_together(tmp_path: Path) -> None:
    code = (
        "import sys, time; from exchange.ratelimit import Budget, SharedLimiter;"
        "limiter = SharedLimiter(sys.argv[1], (Budget('group', 5, 1.0),), margin_s=0.05);"
        "print(*[limiter.acquire('/p') for _ in range(10)])"
    )
    root = Path(__file__).parents[2]
    argv = [sys.executable, "-c", code, str(tmp_path / "budget.json")]
    children = [subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=root) for _ in range(2)]
    times = [float(t) for child in children for t in child.communicate(timeout=60)[0].split()]
    assert len(times) == 20 and most_in_any_window(times, 1.0) <= 5
