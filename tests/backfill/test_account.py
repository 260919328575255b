"""`backfill income` and the account polls against the simulated account: BingX's paging limits, exact
equality with the account's income ledger, idempotent re-runs, one-line refusals that never show a secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from schemas.account import income_from_rest
from simulator import Simulator
from simulator.account import AccountOptions
from tests.backfill.conftest import DAY_MS, TODAY_MS
from tests.recorder.conftest import query

# 20 days at 160 fills a day: ~1,700 income rows a week, so every 7-day window needs two 1,000-row pages
ACCOUNT = AccountOptions(history_days=20, fills_per_day=160)
COLUMNS = "tran_id, income_type, asset, symbol, income, epoch_ms(time) AS time, info, trade_id"


@pytest.fixture(scope="module")
def sim() -> Any:
    with Simulator(symbols=["BTC-USDT", "ETH-USDT"], account=ACCOUNT) as simulator:
        yield simulator


def _run(sim: Simulator, data_dir: Path, *args: str, secret: str = ACCOUNT.secret) -> Any:
    env = {"BINGX_API_KEY": ACCOUNT.api_key, "BINGX_API_SECRET": secret, "BINGX_CONFIG": ""}
    argv = ["--data-dir", str(data_dir), "--rest-url", sim.rest_url or "", *args]
    return CliRunner().invoke(main, argv, env=env, catch_exceptions=False)


def _ledger(sim: Simulator) -> list[dict[str, Any]]:
    rows = income_from_rest({"code": 0, "data": sim.account.income}, {})
    return sorted(rows, key=lambda r: (r["time"], r["tran_id"]))


def test_backfill_income_equals_the_ledger_over_pages_and_windows_and_a_rerun_writes_nothing(
    sim: Simulator, tmp_path: Path
) -> None:
    since = str(TODAY_MS - 30 * DAY_MS)
    first = _run(sim, tmp_path, "backfill", "income", "--since", since)
    assert first.exit_code == 0, first.output
    windows = [r for r in sim.rest_ledger.requests if r.path.endswith("/user/income")]
    assert len(windows) >= 6  # three 7-day windows, two pages each at least
    assert max(int(r.params["endTime"]) - int(r.params["startTime"]) for r in windows) <= 7 * DAY_MS
    assert all(r.code == 0 for r in windows)
    times = [r.time_ms for r in windows]  # BingX's UID budget for income: 5 a second
    assert all(later - earlier >= 1000 for earlier, later in zip(times, times[5:], strict=False))
    landed = query(tmp_path / "lake", f"SELECT {COLUMNS} FROM income ORDER BY time, tran_id")
    assert landed == _ledger(sim)
    again = _run(sim, tmp_path, "backfill", "income", "--since", since)
    assert again.exit_code == 0 and "backfill income: 0 rows in 0 files" in again.output


def test_a_wrong_secret_is_one_line_exit_1_and_the_secret_is_nowhere(sim: Simulator, tmp_path: Path) -> None:
    wrong = "wrong-secret-33aa71"
    result = _run(sim, tmp_path, "backfill", "income", secret=wrong)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1 and "BINGX_API_SECRET" in result.output
    assert wrong not in result.output and ACCOUNT.secret not in result.output


def test_a_missing_key_or_secret_says_which(sim: Simulator, tmp_path: Path) -> None:
    argv = ["--data-dir", str(tmp_path), "--rest-url", sim.rest_url or "", "poll", "balances"]
    no_key = CliRunner().invoke(
        main, argv, env={"BINGX_API_KEY": "", "BINGX_API_SECRET": "x", "BINGX_CONFIG": ""}
    )
    assert no_key.exit_code == 1 and "no API key" in no_key.output and no_key.output.count("\n") == 1
    no_secret = CliRunner().invoke(
        main, argv, env={"BINGX_API_KEY": "k", "BINGX_API_SECRET": "", "BINGX_CONFIG": ""}
    )
    assert no_secret.exit_code == 1 and "no API secret" in no_secret.output


def test_the_key_and_secret_can_come_from_the_config_file(sim: Simulator, tmp_path: Path) -> None:
    config = tmp_path / "bingx.toml"
    config.write_text(f'[credentials]\napi_key = "{ACCOUNT.api_key}"\napi_secret = "{ACCOUNT.secret}"\n')
    argv = ["--data-dir", str(tmp_path), "--rest-url", sim.rest_url or "", "poll", "commission-rates"]
    env = {"BINGX_API_KEY": "", "BINGX_API_SECRET": "", "BINGX_CONFIG": str(config)}
    result = CliRunner().invoke(main, argv, env=env)
    assert result.exit_code == 0, result.output
    assert query(tmp_path / "lake", "SELECT taker_commission_rate FROM commission_rates") == [
        {"taker_commission_rate": 0.0005}
    ]


def test_polls_record_balances_and_positions_as_the_account_reports_them(
    sim: Simulator, tmp_path: Path
) -> None:
    for what in ("balances", "positions"):
        result = _run(sim, tmp_path, "poll", what)
        assert result.exit_code == 0, result.output
    balance = query(tmp_path / "lake", "SELECT asset, balance, source FROM balances")
    assert balance == [
        {"asset": "USDT", "balance": float(sim.account.balances()[0]["balance"]), "source": "poll"}
    ]
    held = query(tmp_path / "lake", "SELECT symbol FROM positions")
    assert [r["symbol"] for r in held] == [p["symbol"] for p in sim.account.open_positions(None)]
