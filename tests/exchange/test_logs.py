"""--log-format json: one JSON object per line (time, level, logger, message), secrets redacted."""

from __future__ import annotations

import json
import logging

from exchange.logs import JsonFormatter


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise RuntimeError("boom with s3cr3t-value")
        except RuntimeError:
            import sys

            info = sys.exc_info()
    return logging.LogRecord("recorder.runner", logging.WARNING, __file__, 1, message, args, info)


def test_a_json_line_has_time_level_logger_and_message() -> None:
    line = JsonFormatter().format(_record("recording %d topics\nover %s", 4, "one socket"))
    assert "\n" not in line
    parsed = json.loads(line)
    assert set(parsed) == {"time", "level", "logger", "message"}
    assert parsed["level"] == "WARNING" and parsed["logger"] == "recorder.runner"
    assert parsed["message"] == "recording 4 topics\nover one socket"
    assert parsed["time"].endswith("Z") and "T" in parsed["time"]


def test_secrets_and_signatures_never_reach_a_json_line() -> None:
    formatter = JsonFormatter(secrets=("s3cr3t-value", "my-api-key"))
    line = formatter.format(_record("GET /x?a=1&signature=abcdef0123 key=%s", "my-api-key", exc=True))
    parsed = json.loads(line)
    assert "abcdef0123" not in line and "my-api-key" not in line and "s3cr3t-value" not in line
    assert "signature=***" in parsed["message"] and "RuntimeError" in parsed["exc"]
