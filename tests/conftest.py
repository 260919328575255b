"""Shared fixtures. Nothing here touches the network: the exchange is the local simulator."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

PAYLOADS = Path(__file__).parent / "payloads"


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
