"""Shared fixtures. Nothing here touches the network: the exchange is the local simulator."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

PAYLOADS = Path(__file__).parent / "payloads"


def utc_ms(*parts: int) -> int:
    """A UTC wall time as the epoch milliseconds a converter's row carries: utc_ms(2025, 10, 9, 8, 11)."""
    return (datetime(*parts, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def as_ms(value: Any) -> Any:
    """A datetime read back from the lake as the epoch ms a converter's row carries; anything else as is."""
    if isinstance(value, datetime):
        return (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    return value


def load_payload(name: str) -> Any:
    """Read tests/payloads/<name> (JSON)."""
    return json.loads((PAYLOADS / name).read_text())


@pytest.fixture
def payload() -> Any:
    return load_payload


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    root = tmp_path / "lake"
    root.mkdir()
    return root
