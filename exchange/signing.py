"""Query strings for BingX: canonical encoding, HMAC-SHA256 signing (BINGX_API.md §16), secret redaction.

The key and secret arrive as arguments only (cli.py reads BINGX_API_KEY/BINGX_API_SECRET) and never appear in
a message, a repr or a log line produced here.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

API_KEY_HEADER = "X-BX-APIKEY"
# A listenKey in a URL is a bearer credential too (BINGX_API.md §16): redacted like a signature.
_SIGNATURE = re.compile(r"((?:signature|listenKey)=)[^&\s'\"]+", re.IGNORECASE)
REDACTED = "***"
_URL_LOGGERS = ("urllib3.connectionpool",)  # logs every request line, query string included, at DEBUG


def wire_value(value: Any) -> str:
    """Render a parameter as BingX expects it: JSON-style booleans, everything else via str()."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def canonical_query(params: Mapping[str, Any], encode: bool) -> str:
    """Join parameters sorted by key (ASCII), as newer BingX docs require for signing.

    BingX signs the unencoded string but wants values containing `[` or `{` URL-encoded in the URL itself.
    """
    pairs = sorted((str(key), wire_value(value)) for key, value in params.items())
    if encode:
        return "&".join(f"{quote(key, safe='')}={quote(value, safe='')}" for key, value in pairs)
    return "&".join(f"{key}={value}" for key, value in pairs)


def sign(payload: str, secret: str) -> str:
    """Return the lower-case hex HMAC-SHA256 of payload under secret."""
    return hmac.new(secret.encode(), payload.encode(), hashlib.sha256).hexdigest()


def signed_query(params: Mapping[str, Any], secret: str, timestamp_ms: int) -> str:
    """Return the URL query string with `timestamp` added and `signature` appended last."""
    stamped = {**params, "timestamp": timestamp_ms}
    signature = sign(canonical_query(stamped, encode=False), secret)
    return f"{canonical_query(stamped, encode=True)}&signature={signature}"


class Credentials:
    """An API key and secret that refuse to be printed."""

    __slots__ = ("_key", "_secret")

    def __init__(self, api_key: str, secret: str) -> None:
        if not api_key or not secret:
            raise ValueError("both an API key and a secret are needed to sign requests")
        self._key = api_key
        self._secret = secret

    @property
    def api_key(self) -> str:
        return self._key

    @property
    def secret(self) -> str:
        return self._secret

    def redact(self, text: str) -> str:
        """Replace the key, the secret and any signature in text with ***."""
        return redact(text, (self._key, self._secret))

    def __repr__(self) -> str:
        return f"Credentials(api_key={REDACTED}, secret={REDACTED})"

    __str__ = __repr__


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Replace every secret and every `signature=` / `listenKey=` value in text with ***."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return _SIGNATURE.sub(rf"\g<1>{REDACTED}", text)


class _RedactSignatures(logging.Filter):
    """Rewrites log records so that a `signature=` query value never reaches a handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        lowered = message.lower()
        if "signature=" in lowered or "listenkey=" in lowered:
            record.msg, record.args = redact(message), None
        return True


_FILTER = _RedactSignatures()


def redact_request_logs(*more: str) -> None:
    """Install (once) a filter that strips signatures from the HTTP library's request log lines (and from
    the loggers named in `more`)."""
    for name in (*_URL_LOGGERS, *more):
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)


def signed_params(params: Mapping[str, Any], secret: str, timestamp_ms: int) -> dict[str, Any]:
    """Return the parameters with `timestamp` and `signature` for a JSON request body (BingX's body form).

    The body form signs the same sorted, unencoded `key=value&...` string as the query form; the signature
    then travels as one more JSON field.
    """
    stamped = {**params, "timestamp": timestamp_ms}
    return {**stamped, "signature": sign(canonical_query(stamped, encode=False), secret)}


def short_hash(token: str) -> str:
    """Name a bearer token (a listenKey) in logs and stream_events without revealing it: 10 hex digits."""
    return hashlib.sha256(token.encode()).hexdigest()[:10]
