"""/health: is every subscribed topic fresh? Decided from a status document (service/status.py); pure.

Fresh is the completeness work's rule, not a second one: a topic is stale once its last frame is older
than its channel's silence tolerance (storage.gaps.tolerance_s: the same seconds after which stream_gaps
opens a `silence` or `stopped` window). A quiet topic on a live socket stays fresh up to that tolerance, so
a trade topic without fills for 40 s is fine while a depth topic silent for 11 s is not.
"""

from __future__ import annotations

from typing import Any

from storage.gaps import tolerance_s

# A status document older than this says nothing about now: its process is gone or stuck (written every 2 s).
STALE_DOCUMENT_S = 10.0


def stale_topics(document: dict[str, Any], now: float) -> list[dict[str, Any]]:
    """Every topic whose last frame (or, before the first, the process's start) is past its tolerance."""
    stale = []
    started = float(document.get("started_at") or now)
    for topic, entry in sorted((document.get("topics") or {}).items()):
        channel = str(entry.get("channel") or topic.partition("@")[2])
        last = entry.get("last_frame_at")
        age = now - float(last if last is not None else started)
        tolerance = tolerance_s(channel)
        if age > tolerance:
            found = {"topic": topic, "age_s": round(age, 3), "tolerance_s": tolerance}
            if entry.get("refused") is not None:
                found["refused"] = entry["refused"]
            stale.append(found)
    return stale


def verdict(document: dict[str, Any] | None, now: float) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body): 200 while every topic is fresh, 503 naming the stale ones otherwise."""
    if document is None:
        return 503, {"status": "unknown", "reason": "no status document: the recorder has not started"}
    written = float(document.get("written_at") or 0.0)
    if now - written > STALE_DOCUMENT_S:
        reason = f"the status document is {now - written:.0f} s old: its process is gone or stuck"
        return 503, {"status": "unknown", "reason": reason, "pid": document.get("pid")}
    topics = document.get("topics") or {}
    stale = stale_topics(document, now)
    body = {"status": "stale" if stale else "ok", "topics": len(topics), "stale": stale}
    return (503 if stale else 200), body
