"""Log line formats for every process: text (the default) or json, one object per line for log shippers.

Here beside the redaction rule (exchange.signing.redact) that both formats apply; the credentials in the
environment are replaced too. BINGX_LOG_FORMAT carries the choice to child processes (the converter)."""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime

from exchange.signing import redact

TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_SECRETS = ("BINGX_API_KEY", "BINGX_API_SECRET")
FORMAT_ENV = "BINGX_LOG_FORMAT"
_current = "text"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601 with ms), level, logger, message (and exc if any)."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        line = {
            "time": stamp.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage(), self.secrets),
        }
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info), self.secrets)
        return json.dumps(line, ensure_ascii=False)


class _RedactedText(logging.Formatter):
    def __init__(self, secrets: tuple[str, ...]) -> None:
        super().__init__(TEXT)
        self.secrets = secrets

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def configure(level: str, fmt: str | None = None) -> None:
    """Set the root logger's level and line format (text or json; default BINGX_LOG_FORMAT's, else text)."""
    global _current
    fmt = fmt or os.environ.get(FORMAT_ENV) or "text"
    _current = fmt
    secrets = tuple(value for name in _SECRETS if (value := os.environ.get(name)))
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(secrets) if fmt == "json" else _RedactedText(secrets))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    for name in ("botocore", "aiobotocore", "s3fs"):  # their DEBUG lines carry request headers (tokens)
        logging.getLogger(name).setLevel(max(logging.INFO, logging.getLevelName(level.upper())))


def current_format() -> str:
    """The format `configure` last set: what a child process started from here should log in."""
    return _current
