"""The simulator's signed endpoints (BINGX_API.md §16): API key, timestamp, recvWindow and HMAC checked with
BingX's codes, then balance, positions, income (BingX's paging limits enforced), commission rate, listenKeys.

Pure: params and headers in, (HTTP status, body) out. Errors are HTTP 200 envelopes, as BingX sends them.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from simulator.account import MAKER_RATE, WEEK_MS, Account
from simulator.endpoints import ApiError

API_KEY_HEADER = "x-bx-apikey"
DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60_000
FUTURE_TOLERANCE_MS = 1000  # a timestamp this far ahead of the server's clock is still accepted
LISTEN_KEY_PATH = "/openApi/user/auth/userDataStream"
INCOME_LIMIT_MAX = 1000

Answer = tuple[int, Any]


def envelope(data: Any) -> dict[str, Any]:
    return {"code": 0, "msg": "", "data": data}


def check_key(account: Account, headers: Mapping[str, str]) -> None:
    """Refuse a missing or unknown X-BX-APIKEY header (100413)."""
    key = headers.get(API_KEY_HEADER)
    if not key:
        raise ApiError(100413, "Null apiKey: the X-BX-APIKEY header is missing")
    if not hmac.compare_digest(key.encode(), account.options.api_key.encode()):
        raise ApiError(100413, "Incorrect apiKey")


def verify(
    account: Account, params: dict[str, str], raw_query: str, headers: Mapping[str, str], now_ms: int
) -> None:
    """Check key, signature, timestamp and recvWindow the way BingX answers them; raise ApiError."""
    check_key(account, headers)
    signature = params.pop("signature", "")
    if not signature:
        raise ApiError(100412, "Null signature")
    raw = params.get("timestamp", "")
    if not raw.isdigit():
        raise ApiError(100421, "Null timestamp or timestamp mismatch")
    window = int(params.get("recvWindow") or 0) or DEFAULT_RECV_WINDOW_MS  # the seed's example sends 0
    window = min(window, MAX_RECV_WINDOW_MS)
    stamp = int(raw)
    if stamp > now_ms + FUTURE_TOLERANCE_MS or now_ms - stamp > window:
        raise ApiError(100421, f"timestamp mismatch: {stamp} is {now_ms - stamp} ms from the server's clock")
    secret = account.options.secret
    candidates = ["&".join(f"{k}={v}" for k, v in sorted(params.items()))]  # newer docs: sorted by key
    unsigned = raw_query.rpartition("&signature=")[0] if "&signature=" in raw_query else ""
    if unsigned:
        candidates.append(unquote(unsigned))  # older docs: the order as sent, signed unencoded
    # Written out here rather than imported from exchange/: the fake must not share the client's bugs.
    expected = [hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest() for text in candidates]
    if not any(hmac.compare_digest(digest, signature) for digest in expected):
        raise ApiError(100001, "Signature verification failed")


def balance(account: Account, params: Mapping[str, str], now_ms: int) -> Any:
    return account.balances()


def positions(account: Account, params: Mapping[str, str], now_ms: int) -> Any:
    return account.open_positions(params.get("symbol") or None)


def commission_rate(account: Account, params: Mapping[str, str], now_ms: int) -> Any:
    from simulator.account import FEE_RATE

    # Shape from DOCS-V3 / JK (the seed's response table is cut off): JSON numbers inside "commission".
    return {"commission": {"takerCommissionRate": float(FEE_RATE), "makerCommissionRate": float(MAKER_RATE)}}


def income(account: Account, params: Mapping[str, str], now_ms: int) -> Any:
    """Without a range only the last 7 days; a range over 7 days is refused; 3 months kept; newest first."""
    limit = _int(params, "limit", 100)
    if not 1 <= limit <= INCOME_LIMIT_MAX:
        raise ApiError(109400, f"Invalid parameters, err:limit: must be between 1 and {INCOME_LIMIT_MAX}.")
    start, end = params.get("startTime"), params.get("endTime")
    if not start and not end:
        start_ms, end_ms = now_ms - WEEK_MS, now_ms
    elif start and not end:
        start_ms = _int(params, "startTime", 0)
        end_ms = min(now_ms, start_ms + WEEK_MS)
    elif end and not start:
        end_ms = _int(params, "endTime", 0)
        start_ms = end_ms - WEEK_MS
    else:
        start_ms, end_ms = _int(params, "startTime", 0), _int(params, "endTime", 0)
    if end_ms - start_ms > WEEK_MS:
        raise ApiError(
            109400, "Invalid parameters, err:the time range between startTime and endTime > 7 days"
        )
    if end_ms < start_ms:
        raise ApiError(109400, "Invalid parameters, err:startTime must not be after endTime")
    rows = account.income_between(start_ms, end_ms)
    wanted_symbol, wanted_type = params.get("symbol"), params.get("incomeType")
    rows = [
        r
        for r in rows
        if (not wanted_symbol or r["symbol"] == wanted_symbol)
        and (not wanted_type or r["incomeType"] == wanted_type)
    ]
    return rows[:limit]


SIGNED_GETS: dict[str, Callable[[Account, Mapping[str, str], int], Any]] = {
    "/openApi/swap/v3/user/balance": balance,
    "/openApi/swap/v2/user/positions": positions,
    "/openApi/swap/v2/user/income": income,
    "/openApi/swap/v2/user/commissionRate": commission_rate,
}
SIGNED_PATHS = frozenset({*SIGNED_GETS, LISTEN_KEY_PATH})


def answer(
    account: Account,
    method: str,
    path: str,
    params: dict[str, str],
    raw_query: str,
    headers: Mapping[str, str],
    now_ms: int,
) -> Answer:
    """Serve one request to a signed path: (HTTP status, JSON body)."""
    try:
        if path == LISTEN_KEY_PATH:
            check_key(account, headers)
            return listen_key(account, method, params)
        endpoint = SIGNED_GETS.get(path)
        if endpoint is None or method != "GET":
            return 200, {"code": 100400, "msg": "this api is not exist"}
        verify(account, params, raw_query, headers, now_ms)
        return 200, envelope(endpoint(account, params, now_ms))
    except ApiError as error:
        return 200, {"code": error.code, "msg": error.msg}


def listen_key(account: Account, method: str, params: Mapping[str, str]) -> Answer:
    """POST creates (bare or wrapped answer), PUT extends, DELETE deletes; 404 for an unknown key (§16)."""
    if method == "POST":
        key = account.create_listen_key()
        if account.options.listen_key_shape == "bare":
            return 200, {"listenKey": key}
        return 200, envelope({"listenKey": key})
    key = params.get("listenKey", "")
    if not key:
        return 200, {"code": 100400, "msg": "no request parameters: listenKey is required"}
    done = account.extend_listen_key(key) if method == "PUT" else account.delete_listen_key(key)
    if method not in ("PUT", "DELETE"):
        return 200, {"code": 100400, "msg": "this api is not exist"}
    if not done:
        return 404, {"code": 404, "msg": "listenKey does not exist", "data": {}}
    return 200, envelope({})


def _int(params: Mapping[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ApiError(109400, f"Invalid parameters, err:{name}: {raw!r} is not an integer.") from None
