"""The composition root: the only module that reads flags, environment and config, wires the packages
together, and turns errors a user can act on into one line and exit code 1. Bugs keep their traceback."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from backfill.errors import PagingError
from exchange.errors import ExchangeError
from storage.errors import SchemaMismatch

LIVE_REST_URL = "https://open-api.bingx.com"
LIVE_WS_URL = "wss://open-api-swap.bingx.com/swap-market"


class UserError(Exception):
    """A bad argument, config or state the user can fix; printed as one line."""


# Every exchange failure that reaches here has been retried already (or cannot be): one line, exit 1.
USER_ERRORS = (ExchangeError, UserError, SchemaMismatch, PagingError)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    rest_url: str
    ws_url: str
    # Optional: market data needs no key; historicalTrades accepts one. From the environment only.
    api_key: str | None = field(default=None, repr=False)
    api_secret: str | None = field(default=None, repr=False)

    @property
    def lake(self) -> Path:
        return self.data_dir / "lake"


class Cli(click.Group):
    """Turns errors a user can act on into one line and exit code 1; bugs keep their traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as error:
            message = " ".join(str(error).split())  # one line, whatever the error carried
            raise click.ClickException(message) from error


@click.group(cls=Cli)
@click.option(
    "--data-dir",
    envvar="BINGX_DATA_DIR",
    default="./data",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where journal/, lake/ and state/ live.",
)
@click.option("--rest-url", envvar="BINGX_REST_URL", default=LIVE_REST_URL, show_default=True)
@click.option("--ws-url", envvar="BINGX_WS_URL", default=LIVE_WS_URL, show_default=True)
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.version_option(package_name="bingx-recorder")
@click.pass_context
def main(ctx: click.Context, data_dir: Path, rest_url: str, ws_url: str, log_level: str) -> None:
    """Record BingX USDT-M perpetual futures market data into a Parquet lake and query it with DuckDB.

    \b
    Example:
      bingx-recorder simulate &                      # a local BingX, prints the URLs to use
      bingx-recorder record --symbols BTC-USDT --channels trade,kline_1m --duration 60
      bingx-recorder sql "SELECT count(*) FROM trades"
    """
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    ctx.obj = Settings(
        data_dir=data_dir,
        rest_url=rest_url.rstrip("/"),
        ws_url=ws_url,
        api_key=os.environ.get("BINGX_API_KEY") or None,
        api_secret=os.environ.get("BINGX_API_SECRET") or None,
    )


# --- registry commands: datasets ---


@main.command()
@click.option("--format", "fmt", type=click.Choice(["table", "markdown"]), default="table", show_default=True)
def datasets(fmt: str) -> None:
    """List every dataset: its natural key, stream channel and REST source.

    \b
    Example:
      bingx-recorder datasets
      bingx-recorder datasets --format markdown >> NOTES.md
    """
    from schemas import DATASETS

    rows = [
        (
            name,
            ", ".join(dataset.key),
            dataset.channel.pattern if dataset.channel else "",
            dataset.rest_path or "",
            dataset.description,
        )
        for name, dataset in DATASETS.items()
    ]
    header = ("dataset", "natural key", "stream channel (after <SYMBOL>@)", "REST path", "what it holds")
    if fmt == "markdown":
        click.echo(markdown_table(header, rows))
        return
    for row in rows:
        click.echo(f"{row[0]:<16} key=({row[1]})  {row[2] or '-'}  {row[3] or '-'}")


def markdown_table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    """Render a GitHub markdown table; backticks keep regexes and paths literal."""

    def cell(value: str) -> str:
        escaped = value.replace("|", "\\|")  # a bare | ends a markdown cell, even inside backticks
        return f"`{escaped}`" if value else value

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        lines.append("| " + " | ".join([cell(v) for v in row[:-1]] + [row[-1]]) + " |")
    return "\n".join(lines)


# --- storage commands: sql, views ---


@main.command()
@click.argument("query")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="table: for reading; csv: header + rows; json: JSON Lines, one object per row.",
)
@click.option("--max-rows", default=100, show_default=True, help="Rows shown by --format table.")
@click.pass_obj
def sql(settings: Settings, query: str, output_format: str, max_rows: int) -> None:
    """Run a DuckDB SQL QUERY over the lake and print the result.

    Every dataset is a view (trades, klines, ...) with one row per natural key: backfilled rows beat
    polled ones, which beat stream rows; among equals the latest received_at wins. Times are UTC.
    In csv, NULL is an empty cell and lists are JSON arrays.

    \b
    Example:
      bingx-recorder sql "SELECT symbol, count(*) AS trades FROM trades GROUP BY symbol"
      bingx-recorder sql --format csv "SELECT * FROM klines WHERE date = '2024-06-01'" > bars.csv
      bingx-recorder sql --format json "SELECT * FROM stream_events ORDER BY received_at" | jq .event
    """
    import sys

    import duckdb

    from storage.results import QueryError, run
    from storage.views import connect

    try:
        con = connect(settings.lake)
    except duckdb.Error as error:
        raise UserError(f"cannot open the views over {settings.lake}: {error}") from None
    try:
        run(con, query, sys.stdout, output_format, max_rows)
    except QueryError as error:
        raise UserError(str(error)) from None
    finally:
        con.close()


@main.command()
@click.option(
    "--db",
    "database",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="DuckDB file to create or update.",
)
@click.pass_obj
def views(settings: Settings, database: Path) -> None:
    """Write the lake's views into a DuckDB file for the DuckDB CLI and notebooks.

    The views read the lake by absolute path when queried, so new files show up without re-running
    this; re-running replaces the views (after an upgrade that adds datasets or columns).

    \b
    Example:
      bingx-recorder --data-dir /srv/bingx views --db /srv/bingx/bingx.duckdb
      duckdb /srv/bingx/bingx.duckdb -c "SELECT count(*) FROM trades"
    """
    import duckdb

    from storage.views import create_views

    try:
        with duckdb.connect(str(database)) as con:
            names = create_views(con, settings.lake)
    except duckdb.Error as error:
        raise UserError(f"cannot write views into {database}: {str(error).splitlines()[0]}") from None
    for name in names:
        click.echo(name)


# --- simulator commands: simulate ---


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--ws-port", default=0, show_default=True, help="WebSocket port (0 = any free port).")
@click.option("--rest-port", default=0, show_default=True, help="HTTP port (0 = any free port).")
@click.option("--admin-port", type=int, default=None, help="Fault-injection HTTP port (0 = any free).")
@click.option("--symbols", default="BTC-USDT,ETH-USDT", show_default=True, help="Comma-separated contracts.")
@click.option("--seed", default=0, show_default=True, help="Market seed: same seed, same trades and bars.")
@click.option("--rate", default=1.0, show_default=True, help="Push cadence multiplier (2 = twice as often).")
@click.option("--trades-per-second", default=2.0, show_default=True, help="Average trades per symbol.")
def simulate(
    host: str,
    ws_port: int,
    rest_port: int,
    admin_port: int | None,
    symbols: str,
    seed: int,
    rate: float,
    trades_per_second: float,
) -> None:
    """Serve a local BingX (WebSocket + REST) from a seeded market until Ctrl-C.

    Prints the URLs to point the recorder at, as shell `export` lines.

    \b
    Example:
      bingx-recorder simulate --ws-port 8765 --rest-port 8080 --admin-port 8081 &
      export BINGX_WS_URL=ws://127.0.0.1:8765/swap-market BINGX_REST_URL=http://127.0.0.1:8080
      bingx-recorder record --symbols BTC-USDT --channels trade --duration 30
      curl -X POST 'http://127.0.0.1:8081/faults/drop'   # break every WebSocket connection
    """
    import signal
    import threading

    from simulator import Simulator

    logging.getLogger("websockets").setLevel(logging.WARNING)  # one line per connection drowns the URLs
    names = [name.strip() for name in symbols.split(",") if name.strip()]
    if not names:
        raise UserError("--symbols needs at least one contract, e.g. --symbols BTC-USDT")
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    sim = Simulator(
        symbols=names,
        seed=seed,
        rate=rate,
        trades_per_second=trades_per_second,
        host=host,
        ws_port=ws_port,
        rest_port=rest_port,
        admin_port=admin_port,
    )
    with sim:
        urls = f"BINGX_WS_URL={sim.ws_url}"
        urls += f" BINGX_REST_URL={sim.rest_url}" if sim.rest_url else ""
        click.echo(f"export {urls}")
        click.echo(f"# or: bingx-recorder --ws-url {sim.ws_url} --rest-url {sim.rest_url or '-'} record ...")
        if sim.admin_url:
            admin = sim.admin_url
            click.echo(f"# faults: curl -X POST {admin}/faults/drop ; ledger: curl {admin}/ledger")
        click.echo("# serving; Ctrl-C to stop", nl=True)
        while not stop.wait(0.2):
            pass


# --- recorder commands: record ---


@main.command()
@click.option("--symbols", help="Comma-separated symbols (BTC-USDT,ETH-USDT) or 'all' tradable contracts.")
@click.option(
    "--channels",
    help="Comma-separated topic suffixes: trade, kline_1m, depth20@500ms, incrDepth, ticker, ...",
)
@click.option(
    "--duration", type=float, help="Stop after this many seconds (default: run until SIGINT/SIGTERM)."
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file with the same keys as the flags.",
)
@click.option(
    "--topics-per-connection", type=int, help="At most this many topics per socket (1..200, default 200)."
)
@click.option("--silence-timeout", type=float, help="Seconds without any frame before a socket is dead [15].")
@click.option("--converter", type=click.Choice(["process", "thread"]), help="Where journal → Parquet runs.")
@click.option(
    "--journal-archive", help="Move converted journal segments to this folder instead of deleting them."
)
@click.option(
    "--lake-interval",
    type=float,
    help="Seconds between lake writes [30]: lower shows data sooner, at more files and CPU.",
)
@click.option(
    "--book-snapshots",
    help="Write book_snapshots while recording incrDepth: LEVELS@INTERVALms, e.g. 25@100ms [off].",
)
@click.option(
    "--book-checkpoint", type=float, help="Minutes between full-depth book checkpoints [5]; 0: none."
)
@click.option(
    "--book-tolerance",
    type=float,
    help="Milliseconds a book may disagree with depth<N> frames before it is resynced [5000].",
)
@click.pass_obj
def record(settings: Settings, /, **flags: Any) -> None:
    """Record live WebSocket channels: journal first, then Parquet under <data-dir>/lake.

    Every frame is journaled (receive time, connection, sequence) before anything else; a converter turns
    the journal into raw_messages, the channel's dataset and stream_events. Reconnects forever; SIGINT or
    SIGTERM stops cleanly (exit 0); a kill -9 loses nothing journaled.

    \b
    Example:
      bingx-recorder record --symbols BTC-USDT,ETH-USDT --channels trade,kline_1m,incrDepth --duration 60
      bingx-recorder record --symbols all --channels trade,kline_1m --topics-per-connection 150
      bingx-recorder record --config record.toml    # symbols = "all"  channels = ["trade", "bookTicker"]
      bingx-recorder record --symbols BTC-USDT --channels incrDepth,depth20@500ms --book-snapshots 25@100ms

    With incrDepth, books are kept from it as it is recorded: a repeated or backward update id, an update
    before the snapshot, a crossed book or a disagreement with depth<N> frames for longer than
    --book-tolerance is a `resync` row in stream_events, and the topic is resubscribed for a new snapshot.
    --book-snapshots also writes book_snapshots rows (off by default: `bingx-recorder books` derives the
    same rows from the lake afterwards).
    """
    from recorder.command import ConfigError, Endpoints
    from recorder.command import record as run_record
    from recorder.topics import TopicError

    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    endpoints = Endpoints(settings.data_dir, settings.rest_url, settings.ws_url, level)
    try:
        run_record(flags, endpoints)
    except (ConfigError, TopicError) as error:
        raise UserError(str(error)) from error


# --- book commands: books, book ---


@main.command()
@click.option("--symbols", help="Comma-separated symbols [default: every symbol with book_updates].")
@click.option("--since", help="Start: ISO-8601 (UTC unless it has an offset) or epoch ms [the first update].")
@click.option("--until", help="End (exclusive): ISO-8601 or epoch ms [the last update].")
@click.option("--levels", default=25, show_default=True, type=click.IntRange(min=1), help="Levels per side.")
@click.option("--interval", default=100, show_default=True, type=click.IntRange(min=1), help="Milliseconds.")
@click.option(
    "--checkpoint", default=5.0, show_default=True, type=click.FloatRange(min=0), help="Minutes; 0: none."
)
@click.option(
    "--tolerance",
    default=5000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Milliseconds a book may disagree with depth<N> frames before it is resynced.",
)
@click.option("--validate", is_flag=True, help="Compare with depth<N> frames and REST depth polls instead.")
@click.pass_obj
def books(
    settings: Settings,
    symbols: str | None,
    since: str | None,
    until: str | None,
    levels: int,
    interval: int,
    checkpoint: float,
    tolerance: int,
    validate: bool,
) -> None:
    """Derive book_snapshots from the lake's book_updates (read in receive order), or validate the books.

    Gives the rows `record --book-snapshots LEVELS@INTERVALms` writes live (the view keeps one of each):
    top-N every INTERVAL while the book changes, one on every (re)snapshot, full depth every CHECKPOINT
    minutes. --validate prints, per symbol, the share of depth<N> frames and REST polls that equal the
    book's top N exactly (frames that equal the book one push earlier or later are lag, counted apart),
    the worst disagreement and the resyncs by reason.

    \b
    Example:
      bingx-recorder books --symbols BTC-USDT --since 2024-06-01 --until 2024-06-02
      bingx-recorder books --validate --since 2024-06-01T14:00:00Z
      bingx-recorder sql "SELECT snapshot_time, bid_prices[1], ask_prices[1] FROM book_snapshots"
    """
    from backfill.arguments import parse_symbols, parse_window
    from books.rebuild import derive
    from books.tracker import SnapshotOptions
    from books.validate import validate as validate_books
    from schemas import DATASETS
    from storage.lake import Lake

    try:
        since_ms, until_ms = parse_window(since, until)
        wanted = parse_symbols(symbols)
    except ValueError as error:
        raise UserError(str(error)) from None
    lake = Lake(settings.lake)
    if not lake.files("book_updates"):
        raise UserError(
            f"no book_updates in {settings.lake}: record incrDepth first (record --channels incrDepth)"
        )
    if validate:
        for report in validate_books(lake, wanted, since_ms, until_ms, tolerance):
            click.echo(report.line())
        return
    options = SnapshotOptions(levels, interval, round(checkpoint * 60_000), tolerance)
    for symbol, tracker in derive(lake, wanted, since_ms, until_ms, options):
        rows, resyncs = tracker.take()
        lake.write(DATASETS["book_snapshots"], rows)
        click.echo(f"{symbol}: {len(rows)} book_snapshots rows, {len(resyncs)} resyncs")


@main.command()
@click.argument("symbol")
@click.option("--at", "at", required=True, help="ISO-8601 (UTC unless it has an offset) or epoch ms.")
@click.option("--levels", type=click.IntRange(min=1), help="Levels per side [all].")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_obj
def book(settings: Settings, symbol: str, at: str, levels: int | None, fmt: str) -> None:
    """Rebuild SYMBOL's order book at an instant from the lake.

    Starts from the last full-depth checkpoint or incrDepth snapshot before --at and applies every update
    whose exchange time is <= --at. From Python: `from books import book_at`.

    \b
    Example:
      bingx-recorder book BTC-USDT --at 2024-06-01T14:03:07.250Z --levels 10
      bingx-recorder book BTC-USDT --at 1717250587250 --format json | jq '.bids[0]'
    """
    import orjson

    from books.rebuild import BookUnknown, book_at

    try:
        found = book_at(settings.data_dir, symbol, at, levels)
    except (BookUnknown, ValueError) as error:
        raise UserError(str(error)) from None
    if fmt == "json":
        click.echo(orjson.dumps(found.as_json()).decode())
        return
    shown = found.as_json()
    click.echo(f"{found.symbol} at {shown['at']}: update {found.update_id} of {shown['event_time']}")
    click.echo(f"{'bid qty':>16} {'bid':>14} | {'ask':<14} {'ask qty':<16}")
    for index in range(max(len(found.bids), len(found.asks))):
        bid = found.bids[index] if index < len(found.bids) else None
        ask = found.asks[index] if index < len(found.asks) else None
        left = f"{bid[1]!s:>16} {bid[0]!s:>14}" if bid else " " * 31  # str(float): the shortest exact form
        right = f"{ask[0]!s:<14} {ask[1]!s:<16}" if ask else ""
        click.echo(f"{left} | {right}".rstrip())


# --- backfill commands: backfill, poll ---


@main.command()
@click.argument("series", type=click.Choice(["klines", "mark-klines", "funding", "trades"]))
@click.option("--symbols", required=True, help="Comma-separated symbols, or 'all' (every listed contract).")
@click.option("--interval", "intervals", help="Comma-separated, for klines and mark-klines [default: 1m].")
@click.option("--since", help="Start: YYYY-MM-DD (UTC) or epoch ms. Default: where the last run stopped.")
@click.option("--until", help="End (exclusive): YYYY-MM-DD (UTC) or epoch ms. Default: now.")
@click.option("--workers", default=4, show_default=True, help="Symbols walked at once (one rate budget).")
@click.option(
    "--flush-rows", default=5000, show_default=True, type=click.IntRange(min=1), help="Rows per write."
)
@click.pass_obj
def backfill(
    settings: Settings,
    series: str,
    symbols: str,
    intervals: str | None,
    since: str | None,
    until: str | None,
    workers: int,
    flush_rows: int,
) -> None:
    """Fetch history over REST into the lake (source='backfill'): resumable, safe to re-run or kill.

    A first run starts at --since (else the contract's listing time); later runs continue where the
    lake's backfill cursor (state/) stops. Bars still open are never stored. Ends with a summary line.

    \b
    Examples:
      bingx-recorder backfill klines --symbols BTC-USDT,ETH-USDT --interval 1m,1h --since 2024-06-01
      bingx-recorder backfill funding --symbols all --since 2024-01-01 --until 2024-07-01
      bingx-recorder backfill trades --symbols BTC-USDT --since 1717200000000
    """
    import sys

    from backfill.arguments import parse_intervals, parse_symbols, parse_window
    from backfill.errors import UnknownSymbol
    from backfill.job import Job, Request, default_state
    from backfill.progress import LogReporter, Reporter, RichReporter
    from backfill.series import SERIES
    from exchange.ratelimit import Limiter
    from exchange.rest import RestClient
    from storage.lake import Lake

    chosen = SERIES[series]
    try:
        since_ms, until_ms = parse_window(since, until)
        wanted = parse_symbols(symbols)
        bars = parse_intervals(intervals, chosen.has_interval, series)
        request = Request(chosen, wanted, bars, since_ms, until_ms)
    except ValueError as error:
        raise UserError(str(error)) from None
    rich = sys.stderr.isatty()
    reporter: Reporter = RichReporter() if rich else LogReporter()
    with RestClient(settings.rest_url, limiter=Limiter.bingx_default()) as client:
        state = default_state(settings.data_dir)
        lake = Lake(settings.lake)
        job = Job(client, lake, state, workers=workers, reporter=reporter, flush_rows=flush_rows)
        try:
            if isinstance(reporter, RichReporter):
                with reporter:
                    summary = job.run(request)
            else:
                summary = job.run(request)
        except UnknownSymbol as error:
            raise UserError(str(error)) from None
    click.echo(summary.line())


@main.command()
@click.argument(
    "snapshot",
    type=click.Choice(
        ["contracts", "premium-index", "open-interest", "tickers", "depth", "book-tickers", "prices"]
    ),
)
@click.option("--symbols", help="Comma-separated symbols, or 'all'. [default: all where the endpoint allows]")
@click.option("--every", type=click.FloatRange(min=0.1), help="Poll every SECONDS until stopped or --count.")
@click.option("--count", type=click.IntRange(min=1), help="With --every: stop after N rounds.")
@click.pass_obj
def poll(
    settings: Settings, snapshot: str, symbols: str | None, every: float | None, count: int | None
) -> None:
    """Take REST snapshots into their datasets (source='poll'), once or on a schedule.

    SIGINT/SIGTERM stop a scheduled poll after the current round, with exit code 0.

    \b
    Examples:
      bingx-recorder poll contracts
      bingx-recorder poll premium-index --every 60
      bingx-recorder poll depth --symbols BTC-USDT,ETH-USDT --every 5 --count 12
    """
    import signal
    import threading

    from backfill.arguments import parse_symbols
    from backfill.contracts import listings, resolve
    from backfill.poll import SNAPSHOTS
    from backfill.poll import poll as poll_snapshots
    from exchange.ratelimit import Limiter
    from exchange.rest import RestClient
    from storage.lake import Lake

    chosen = SNAPSHOTS[snapshot]
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with RestClient(settings.rest_url, limiter=Limiter.bingx_default()) as client:
        try:
            wanted = parse_symbols(symbols)
            if wanted is not None or chosen.per_symbol:
                wanted = resolve(wanted, listings(client))
        except ValueError as error:  # UnknownSymbol included
            raise UserError(str(error)) from None
        lake = Lake(settings.lake)
        summary = poll_snapshots(client, lake, chosen, wanted, every_s=every, count=count, stop=stop)
    click.echo(summary.line())


if __name__ == "__main__":
    main()
