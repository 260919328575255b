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


@pytest.fixture(scope="session")
def s3_server() -> Any:
    """A real local S3 (moto in server mode, on a free port) and the AWS environment that points at it.

    One server per session: the process opens one s3fs filesystem (storage.objectstore), bound to the
    endpoint of its first use. Tests take a bucket each (`s3_lake`), so they stay independent.
    """
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {
        "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        yield env
    server.stop()


@pytest.fixture
def s3_lake(s3_server: Any, request: pytest.FixtureRequest) -> str:
    """An empty bucket on the local S3 server; returns the lake URI `s3://<bucket>/lake`."""
    import re

    import boto3

    bucket = re.sub(r"[^a-z0-9-]", "-", request.node.name.lower())[:40].strip("-") + f"-{id(request)}"
    boto3.client("s3").create_bucket(Bucket=bucket[:63])
    return f"s3://{bucket[:63]}/lake"
