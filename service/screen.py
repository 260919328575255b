"""`bingx-recorder status`'s one screen, drawn from a status document (and `run`'s service.json). Pure."""

from __future__ import annotations

from typing import Any

from service.health import STALE_DOCUMENT_S, stale_topics


def render(
    document: dict[str, Any],
    now: float,
    where: str,
    alive: bool | None,
    service: dict[str, Any] | None = None,
) -> str:
    """The screen as text. `alive`: does the writing process still run (None: unknown, e.g. over --url)."""
    lines = [_header(document, now, where, alive)]
    lines += _connections(document, now)
    journal = document.get("journal")
    if journal:
        lines.append(
            f"journal backlog: {_bytes(journal.get('backlog_bytes', 0))}, {journal.get('backlog_s', 0):.0f} s"
        )
    lines += _datasets(document, now)
    lines += _jobs(document, now)
    rest = document.get("rest") or {}
    if rest.get("requests"):
        used = ", ".join(f"{k} {v:.0%}" for k, v in sorted(rest.get("budget_used", {}).items()))
        counts = ", ".join(
            f"{group} {n} ({rest.get('throttled', {}).get(group, 0)} throttled)"
            for group, n in sorted(rest["requests"].items())
        )
        lines.append(f"rest: {counts}; budget used: {used or '-'}")
    if service:
        lines += _service(service)
    return "\n".join(lines)


def _header(document: dict[str, Any], now: float, where: str, alive: bool | None) -> str:
    age = now - float(document.get("written_at") or 0)
    up = _duration(now - float(document.get("started_at") or now))
    who = f"{document.get('process', '?')} pid {document.get('pid', '?')}"
    line = f"{who}, up {up}; status from {where}, {age:.0f} s old"
    if document.get("metrics_url"):
        line += f"; metrics at {document['metrics_url']}"
    if alive is False:
        line += "\nSTALE: that process is gone (the figures below are its last)"
    elif age > STALE_DOCUMENT_S:
        line += f"\nSTALE: not updated for {age:.0f} s (the process is stuck or gone)"
    return line


def _connections(document: dict[str, Any], now: float) -> list[str]:
    connections = document.get("connections")
    if connections is None:
        return []
    up = sum(1 for c in connections if c.get("connected"))
    topics = document.get("topics") or {}
    stale = {entry["topic"] for entry in stale_topics(document, now)}
    lines = [
        f"connections: {up}/{len(connections)} up, {len(topics)} topics ({len(stale)} stale); reconnects "
        f"{_sum(connections, 'reconnects')}, silences {_sum(connections, 'silences')}, "
        f"refusals {_sum(connections, 'refusals')}"
    ]
    lines.append(f"  {'channel':<18}{'topics':>7}{'stale':>7}{'frames':>12}{'frames/s':>10}{'lag max':>10}")
    for channel, entry in sorted((document.get("channels") or {}).items()):
        stale_here = sum(1 for t in stale if t.partition("@")[2] == channel)
        rate = entry.get("rate")
        lag = entry.get("lag_s")
        lines.append(
            f"  {channel:<18}{entry.get('topics', 0):>7}{stale_here:>7}{entry.get('frames', 0):>12}"
            f"{'-' if rate is None else f'{rate:.1f}':>10}{'-' if lag is None else f'{lag:.3f} s':>10}"
        )
    for topic in sorted(stale)[:10]:
        lines.append(f"  stale: {topic}")
    return lines


def _datasets(document: dict[str, Any], now: float) -> list[str]:
    lines = []
    for name, entry in sorted((document.get("datasets") or {}).items()):
        rows = ", ".join(f"{source} {count}" for source, count in sorted(entry.get("rows", {}).items()))
        last = entry.get("last_written_at")
        when = "never" if last is None else f"{_duration(now - float(last))} ago"
        lines.append(f"  {name:<18} last rows {when:<12} rows: {rows}")
    return ["lake (rows written by this process):", *lines] if lines else []


def _jobs(document: dict[str, Any], now: float) -> list[str]:
    lines = []
    heal = document.get("heal")
    if heal:
        lines.append(
            f"heal: {heal.get('passes', 0)} passes, {heal.get('rows', 0)} rows, "
            f"{heal.get('failures', 0)} failed"
            f"; last {_ago(heal.get('last_at'), now)} ({heal.get('last_rows', 0)} rows)"
        )
    compaction = document.get("compaction")
    if compaction:
        lines.append(
            f"compaction: {compaction.get('rounds', 0)} rounds, {compaction.get('rows', 0)} rows, "
            f"{compaction.get('files_removed', 0)} files removed, {compaction.get('failures', 0)} failed"
            f"; last {_ago(compaction.get('last_at'), now)}"
        )
    return lines


def _service(service: dict[str, Any]) -> list[str]:
    """Whatever `run` wrote, shown tolerantly: scalars as they are, lists and tables one line per entry."""
    lines = ["service (state/service.json):"]
    for key, value in service.items():
        if isinstance(value, dict):
            value = [
                {"name": name, **v} if isinstance(v, dict) else {"name": name, "value": v}
                for name, v in value.items()
            ]
        if isinstance(value, list):
            for item in value[:20]:
                if isinstance(item, dict):
                    fields = ", ".join(f"{k}={v}" for k, v in item.items() if not isinstance(v, dict | list))
                    lines.append(f"  {key}: {fields}")
                else:
                    lines.append(f"  {key}: {item}")
        else:
            lines.append(f"  {key}: {value}")
    return lines


def _sum(connections: list[dict[str, Any]], key: str) -> int:
    return sum(int(c.get(key, 0)) for c in connections)


def _ago(at: Any, now: float) -> str:
    return "never" if at is None else f"{_duration(now - float(at))} ago"


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def _bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} B"
