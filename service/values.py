"""The checks behind the run config's kinds: each takes a TOML value (and its kind's argument, e.g. the
choices) and returns it normalized, or raises TypeError/ValueError; service.config words the message."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from schemas.dataset import INTERVALS

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_SYMBOL = re.compile(r"[0-9A-Z]+-(USDT|USDC)")


def parse_duration(text: str) -> float:
    """Read 90s, 15m, 8h or 2d (a number and one unit) as seconds; ValueError otherwise."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhd])", text.strip())
    if match is None:
        raise ValueError(text)
    return float(match[1]) * _UNITS[match[2]]


def _str(value: Any, argument: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise TypeError(value)
    return value


def _number(value: Any, argument: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(value)
    return float(value)


def _int(value: Any, argument: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(value)
    return value


def _bool(value: Any, argument: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(value)
    return value


def _choice(value: Any, argument: str) -> str:
    if value not in argument.split(","):
        raise ValueError(value)
    return str(value)


def _names(value: Any, argument: str) -> str:
    """A list of strings, or a comma-separated string: the CLI's comma-separated text."""
    parts = value if isinstance(value, list) else str(value).split(",") if isinstance(value, str) else None
    if parts is None or not parts or not all(isinstance(p, str) and p.strip() for p in parts):
        raise TypeError(value)
    return ",".join(p.strip() for p in parts)


def _symbols(value: Any, argument: str) -> str:
    text = _names(value, argument)
    if text.lower() != "all" and not all(_SYMBOL.fullmatch(part) for part in text.split(",")):
        raise ValueError(value)
    return "all" if text.lower() == "all" else text


def _intervals(value: Any, argument: str) -> str:
    text = _names(value, argument)
    if not all(part in INTERVALS for part in text.split(",")):
        raise ValueError(value)
    return text


def _duration(value: Any, argument: str) -> float:
    if not isinstance(value, str):
        raise TypeError(value)
    return parse_duration(value)


def _duration_off(value: Any, argument: str) -> float | None:
    return None if value == "off" else _duration(value, argument)


def _url(schemes: tuple[str, ...]) -> Callable[[Any, str], str]:
    def check(value: Any, argument: str) -> str:
        if not isinstance(value, str) or not value.startswith(schemes) or "://" not in value[:8]:
            raise ValueError(value)
        return value

    return check


def _address(value: Any, argument: str) -> str:
    host, _, port = _str(value, argument).rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(value)
    return str(value)


def _shard(value: Any, argument: str) -> str:
    match = re.fullmatch(r"(\d+)/(\d+)", _str(value, argument))
    if match is None or not int(match[1]) < int(match[2]):
        raise ValueError(value)
    return str(value)


CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "str": _str,
    "secret": _str,
    "int": _int,
    "float": _number,
    "bool": _bool,
    "choice": _choice,
    "list": _names,
    "symbols": _symbols,
    "intervals": _intervals,
    "duration": _duration,
    "duration_off": _duration_off,
    "http_url": _url(("http://", "https://")),
    "ws_url": _url(("ws://", "wss://")),
    "address": _address,
    "shard": _shard,
}
