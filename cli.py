"""The composition root: the only module that reads flags, environment and config, wires the packages
together, and turns errors a user can act on into one line and exit code 1. Bugs keep their traceback."""

from __future__ import annotations

import dataclasses
import logging
import os
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from backfill.errors import PagingError
from books.errors import BadTime, BookUnknown
from exchange.errors import ExchangeError
from recorder.errors import ConfigError, RecorderFailed, TopicError
from service.state import ServiceRunning
from storage.errors import JournalLocked, LeaseHeld, RebuildError, SchemaMismatch

LIVE_REST_URL = "https://open-api.bingx.com"
LIVE_WS_URL = "wss://open-api-swap.bingx.com/swap-market"


class UserError(Exception):
    """A bad argument, config or state the user can fix; printed as one line."""


# The one table of errors a user can act on: each becomes one line and exit code 1 (Cli.invoke); anything
# else is a bug and keeps its traceback. Every exchange failure that reaches here was retried already.
USER_ERRORS = (
    *(ExchangeError, UserError, PagingError, RecorderFailed, ConfigError, TopicError, ServiceRunning),
    *(SchemaMismatch, JournalLocked, LeaseHeld, RebuildError, BookUnknown, BadTime),
)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    rest_url: str
    ws_url: str
    # Optional: market data needs no key; historicalTrades accepts one. From the environment only.
    api_key: str | None = field(default=None, repr=False)
    api_secret: str | None = field(default=None, repr=False)
    lake_uri: str | None = None  # --lake: a path or s3://bucket/prefix; None is <data-dir>/lake

    @property
    def lake(self) -> str:
        """Where the lake is: a local path or an object-store URI (what DuckDB's views read)."""
        return self.lake_uri or str(self.data_dir / "lake")

    def open_lake(self, tag: str = "") -> Any:
        """The lake (storage.lake.Lake); one line if it is on an object store this install cannot reach."""
        from storage.lake import Lake
        from storage.objectstore import ObjectStoreUnavailable

        try:
            return Lake.from_uri(self.lake, tag)
        except ObjectStoreUnavailable as error:
            raise UserError(str(error)) from None


def writable_data_dir(settings: Settings) -> Path:
    """Create the data dir if needed and prove a file can be written there; one line if not."""
    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise UserError(
            f"--data-dir {path}: cannot create or write there ({reason}); choose another"
        ) from None
    return path


def existing_data_dir(settings: Settings) -> Path:
    """Refuse a data dir that does not exist: a typo must not look like an empty lake."""
    if not settings.data_dir.is_dir():
        raise UserError(
            f"--data-dir {settings.data_dir} does not exist (nothing recorded there yet, or a typo?); "
            "set --data-dir or BINGX_DATA_DIR"
        )
    return settings.data_dir


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's document; ConfigError (one line naming the file) if it cannot be read or parsed."""
    try:
        return tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"config {path}: cannot read it: {error}") from error
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"config {path}: not valid TOML: {error}") from error


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
@click.option(
    "--lake",
    "lake_uri",
    envvar="BINGX_LAKE",
    metavar="URI",
    help="Where the Parquet lake lives: a path or s3://bucket/prefix (AWS_* environment for the endpoint "
    "and credentials) [<data-dir>/lake]. Journal, state and locks stay in --data-dir.",
)
@click.option("--rest-url", envvar="BINGX_REST_URL", default=LIVE_REST_URL, show_default=True)
@click.option("--ws-url", envvar="BINGX_WS_URL", default=LIVE_WS_URL, show_default=True)
@click.option(
    "--log-level",
    default="INFO",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.option(
    "--log-format",
    envvar="BINGX_LOG_FORMAT",
    default="text",
    show_default=True,
    type=click.Choice(["text", "json"]),
    help="json: one JSON object per line (time, level, logger, message) for log shippers.",
)
@click.version_option(package_name="bingx-recorder")
@click.pass_context
def main(
    ctx: click.Context,
    data_dir: Path,
    lake_uri: str | None,
    rest_url: str,
    ws_url: str,
    log_level: str,
    log_format: str,
) -> None:
    """Record BingX USDT-M perpetual futures market data into a Parquet lake and query it with DuckDB.

    \b
    Example:
      bingx-recorder simulate &                      # a local BingX, prints the URLs to use
      bingx-recorder record --symbols BTC-USDT --channels trade,kline_1m --duration 60
      bingx-recorder sql "SELECT count(*) FROM trades"
      AWS_ENDPOINT_URL=http://127.0.0.1:9000 bingx-recorder --lake s3://bucket/bingx sql "SELECT 1"
    """
    from exchange.logs import configure

    configure(log_level, log_format)
    ctx.obj = Settings(
        data_dir=data_dir,
        rest_url=rest_url.rstrip("/"),
        ws_url=ws_url,
        api_key=os.environ.get("BINGX_API_KEY") or None,
        api_secret=os.environ.get("BINGX_API_SECRET") or None,
        lake_uri=lake_uri or None,
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
@click.option(
    "--max-rows",
    default=100,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows shown by --format table.",
)
@click.option(
    "--unsafe",
    is_flag=True,
    help="Allow writes (COPY, CREATE, ATTACH, SET, ...) and reading files outside the lake.",
)
@click.pass_obj
def sql(settings: Settings, query: str, output_format: str, max_rows: int, unsafe: bool) -> None:
    """Run one DuckDB SQL QUERY over the lake and print the result.

    Every dataset is a view (trades, klines, ...) with one row per natural key: backfilled rows beat
    polled ones, which beat stream rows; among equals the latest received_at wins. Times are UTC.
    In csv, NULL is an empty cell and lists are JSON arrays.

    The query is read-only and the lake is the only directory it can read: SELECT, DESCRIBE, SHOW and
    EXPLAIN run; COPY, CREATE, DROP, ATTACH, SET and INSTALL are refused, as is read_text() or
    read_parquet() of any file outside <data-dir>/lake. --unsafe lifts both. One statement per call.

    \b
    Example:
      bingx-recorder sql "SELECT symbol, count(*) AS trades FROM trades GROUP BY symbol"
      bingx-recorder sql --format csv "SELECT * FROM klines WHERE date = '2024-06-01'" > bars.csv
      bingx-recorder sql --format json "SELECT * FROM stream_events ORDER BY received_at" | jq .event
    """
    import sys

    import duckdb

    from storage.results import QueryError, run
    from storage.sandbox import check_query, lock_down
    from storage.views import connect

    existing_data_dir(settings)
    try:
        con = connect(settings.lake)
    except duckdb.Error as error:
        raise UserError(f"cannot open the views over {settings.lake}: {error}") from None
    try:
        check_query(con, query, read_only=not unsafe)
        if not unsafe:
            lock_down(con, settings.lake)
        run(con, query, sys.stdout, output_format, max_rows)
    except QueryError as error:
        raise UserError(_with_hint(str(error))) from None
    finally:
        con.close()


def _with_hint(message: str) -> str:
    if "file system operations are disabled" in message:
        return f"{message} (sql reads only the lake; --unsafe lifts this)"
    if ".parquet" in message and "bingx-recorder check" not in message:
        return f"{message}; run `bingx-recorder check` to quarantine unreadable files"
    return message


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

    from storage.objectstore import register_filesystems
    from storage.views import broken_views, create_views

    try:
        with duckdb.connect(str(database)) as con:
            register_filesystems(con, settings.lake)  # s3://: a reader must register it too (README)
            names = create_views(con, settings.lake)
            broken = broken_views(con)
    except duckdb.Error as error:
        raise UserError(f"cannot write views into {database}: {str(error).splitlines()[0]}") from None
    for name in names:
        click.echo(name)
    for message in broken.values():
        click.echo(f"Warning: {message}", err=True)


CHECK_FOUND = 3  # `check` found unreadable files: a scheduler can alert on it (1 and 2 are errors)


@main.command()
@click.option("--dry-run", is_flag=True, help="List unreadable files; move nothing.")
@click.option(
    "--deep",
    is_flag=True,
    help="Decode every page too, not only each file's footer (finds broken pages; Parquet has no "
    "checksums here, so flipped bits inside plain values go unnoticed).",
)
@click.pass_obj
def check(settings: Settings, dry_run: bool, deep: bool) -> None:
    """Find .parquet files in the lake that cannot be read and quarantine them (fsck).

    A truncated copy or a stray file makes its dataset's view fail; check moves each such file to
    <data-dir>/lake/_quarantine/ under the same relative path, out of every view's reach, and prints one
    line per file. Exit code: 0 every file is readable; 3 unreadable files were found (and moved, unless
    --dry-run); 1 the check could not run (one line). Re-run `views` afterwards for a DuckDB file.

    \b
    Example:
      bingx-recorder --data-dir /srv/bingx check --dry-run
      bingx-recorder --data-dir /srv/bingx check && echo "lake is readable"
    """
    from storage.check import QUARANTINE, quarantine, unreadable_files

    if settings.lake_uri is not None and "://" in settings.lake_uri:
        raise UserError(f"check reads a local lake's files; --lake {settings.lake_uri} is not one")
    lake = existing_data_dir(settings) / "lake" if settings.lake_uri is None else Path(settings.lake_uri)
    if not lake.is_dir():
        click.echo(f"check: no lake under {settings.data_dir} yet: nothing to check")
        return
    try:
        found = unreadable_files(lake, deep=deep)
        for path, reason in found:
            if dry_run:
                click.echo(f"unreadable: {path}: {reason} (not moved: --dry-run)")
            else:
                click.echo(f"unreadable: {path}: {reason} -> moved to {quarantine(lake, path)}")
    except OSError as error:
        raise UserError(f"check {lake}: {error}") from None
    if not found:
        click.echo(f"check: every .parquet file under {lake} is readable")
        return
    done = "listed (--dry-run: nothing moved)" if dry_run else f"moved to {lake / QUARANTINE}"
    click.echo(f"check: {len(found)} unreadable file(s) {done}")
    raise SystemExit(CHECK_FOUND)


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
@click.option(
    "--account",
    is_flag=True,
    help="Also simulate a trader's account (signed endpoints, listenKey stream); prints its test key.",
)
def simulate(
    host: str,
    ws_port: int,
    rest_port: int,
    admin_port: int | None,
    symbols: str,
    seed: int,
    rate: float,
    trades_per_second: float,
    account: bool = False,
) -> None:
    """Serve a local BingX (WebSocket + REST) from a seeded market until Ctrl-C.

    Prints the URLs to point the recorder at, as shell `export` lines.

    \b
    Example:
      bingx-recorder simulate --ws-port 8765 --rest-port 8080 --admin-port 8081 &
      export BINGX_WS_URL=ws://127.0.0.1:8765/swap-market BINGX_REST_URL=http://127.0.0.1:8080
      bingx-recorder record --symbols BTC-USDT --channels trade --duration 30
      curl -X POST 'http://127.0.0.1:8081/faults/drop'   # break every WebSocket connection
      bingx-recorder simulate --account &   # also prints the simulated account's (test) key and secret
      curl -X POST 'http://127.0.0.1:8081/faults/expire-listen-keys'
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
    from simulator.account import AccountOptions

    # A test account that trades every 5 s and settles funding every 30 s, so the stream has something to say.
    simulated = AccountOptions(fill_every_s=5.0, settle_every_s=30.0) if account else None
    sim = Simulator(
        account=simulated,
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
        if simulated is not None:  # the simulator's own test values, not credentials of any real account
            urls += f" BINGX_API_KEY={simulated.api_key} BINGX_API_SECRET={simulated.secret}"
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
    "--duration", type=float, help="Stop after this many seconds, > 0 (default: run until SIGINT/SIGTERM)."
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML file with the same keys as the flags.",
)
@click.option(
    "--topics-per-connection", type=int, help="At most this many topics per socket (1..200, default 200)."
)
@click.option(
    "--silence-timeout",
    type=float,
    help="Seconds without any frame before a socket is dead [15]; at least 6 (BingX pings every ~5 s).",
)
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
    "--account",
    is_flag=True,
    default=None,
    help="Also record the account stream (listenKey): needs BINGX_API_KEY/BINGX_API_SECRET or the config's.",
)
@click.option(
    "--heal/--no-heal",
    default=None,
    help="Heal closed outage windows from REST while recording [on] (see `heal`).",
)
@click.option(
    "--lake",
    "record_lake",
    metavar="URI",
    help="The global --lake, also accepted here (a service passes it after `record`).",
)
@click.option(
    "--shard",
    metavar="I/N",
    help="Record shard I of N: the symbols whose stable name hash mod N is I (recorder/shards.py) [0/1].",
)
@click.option(
    "--compact-every",
    type=float,
    help="Seconds between compactions of closed days in the background [600]; 0 turns it off.",
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
@click.option(
    "--metrics",
    metavar="HOST:PORT",
    help="Serve Prometheus /metrics, /health and /status there, e.g. 127.0.0.1:9464 [off].",
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
      BINGX_API_KEY=... BINGX_API_SECRET=... bingx-recorder record --account --duration 3600
      bingx-recorder record --symbols BTC-USDT --channels incrDepth,depth20@500ms --book-snapshots 25@100ms
      bingx-recorder record --symbols BTC-USDT --channels trade --metrics 127.0.0.1:9464   # then: status
      bingx-recorder --data-dir /srv/a --lake s3://bkt/bingx record --shard 0/2 --symbols all --channels trade

    With incrDepth, books are kept from it as it is recorded: a repeated or backward update id, an update
    before the snapshot, a crossed book or a disagreement with depth<N> frames for longer than
    --book-tolerance is a `resync` row in stream_events, and the topic is resubscribed for a new snapshot.
    --book-snapshots also writes book_snapshots rows (off by default: `bingx-recorder books` derives the
    same rows from the lake afterwards).

    It rewrites <data-dir>/state/status.json every 2 s (`bingx-recorder status` reads it); --metrics also
    serves /metrics, /health (200 while every topic is fresh, 503 listing the stale ones) and /status.
    """
    from recorder.command import Endpoints, options_from
    from recorder.command import record as run_record

    level = logging.getLevelName(logging.getLogger().getEffectiveLevel())
    lake_uri = flags.pop("record_lake", None)
    if lake_uri:
        settings = dataclasses.replace(settings, lake_uri=lake_uri)
    account = bool(flags.pop("account", None))
    keys = credentials(settings, flags.get("config")) if account else None
    endpoints = Endpoints(
        settings.data_dir, settings.rest_url, settings.ws_url, level, keys, settings.lake_uri or ""
    )
    metrics = flags.pop("metrics", None)
    merged = record_values(flags)
    options_from(merged, endpoints, account)  # every argument checked before the data dir is touched
    watch = _watch(settings, metrics, "record")
    try:
        writable_data_dir(settings)
        run_record(merged, endpoints, account, watch.observe_recorder)
    finally:
        watch.close()


def record_values(flags: dict[str, Any]) -> dict[str, Any]:
    """The record command's values: the flags given (not None) over the keys of its --config file."""
    from recorder.command import check_config

    path = flags.get("config")
    from_file = {} if path is None else check_config(read_toml(path), path)
    return {**from_file, **{k: v for k, v in flags.items() if v is not None and k != "config"}}


def _watch(settings: Settings, metrics: str | None, kind: str) -> Any:
    """The status document and metrics beside a command (service/watch.py); a bad --metrics is one line."""
    from service.watch import Watch

    try:
        return Watch(settings.data_dir, metrics, kind)
    except ValueError as error:  # service.metrics.BadAddress
        raise UserError(str(error)) from None


@main.command()
@click.option(
    "--url", help="Read a running process's status over HTTP: its --metrics address, http://HOST:PORT."
)
@click.option("--json", "as_json", is_flag=True, help="Print the status document itself.")
@click.pass_obj
def status(settings: Settings, url: str | None, as_json: bool) -> None:
    """Show a running `record` (or `run`) on one screen: connections, per-channel rates and lag, journal
    backlog, last rows per dataset, last heal and compaction.

    Read from <data-dir>/state/status.json, which `record` rewrites every 2 s (with or without --metrics),
    plus state/service.json when `run` wrote one; or from a process's /status with --url. A status file
    whose process is gone, or that stopped changing, is said to be STALE.

    \b
    Examples:
      bingx-recorder --data-dir ./data status
      bingx-recorder status --url http://127.0.0.1:9464
      bingx-recorder status --json | jq .channels
    """
    import json
    import time

    from service import screen
    from service import status as status_file

    service = None
    if url is not None:
        try:
            document = status_file.fetch(url)
        except status_file.StatusUnavailable as error:
            raise UserError(str(error)) from None
        where, alive = url, None
    else:
        found = status_file.read(existing_data_dir(settings))
        if found is None:
            raise UserError(
                f"no status in {settings.data_dir / status_file.STATUS}: nothing has recorded into this "
                "data dir yet (record writes it every 2 s); or give --url"
            )
        document, where = found, str(settings.data_dir / status_file.STATUS)
        alive = status_file.is_alive(document.get("pid"))
        service = status_file.read(settings.data_dir, status_file.SERVICE)
    if as_json:
        click.echo(json.dumps(document, indent=1, sort_keys=True))
        return
    click.echo(screen.render(document, time.time(), where, alive, service))


# --- service commands: run ---


@main.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The service's TOML file; deploy/bingx.toml has every key, commented.",
)
@click.pass_obj
def run(settings: Settings, config_path: Path) -> None:
    """Run the recorder, polls, backfills, healing and compaction as one supervised service.

    Each part is a child process, an ordinary record / poll / backfill / heal / compact command built from
    the config: the recorder and the polls are restarted with backoff when they die; backfill, heal and
    compact run on their schedules, one of each at a time. The recorder runs with --no-heal and
    --compact-every 0: under run, healing and compaction are the service's. SIGTERM or SIGINT stops every
    part within stop_timeout (exit 0); SIGHUP re-reads the symbol lists (a bad file is logged and the
    running config kept). <data-dir>/state/service.json says what runs, its pids, restarts and last runs.

    \b
    Example:
      bingx-recorder run --config deploy/bingx.toml
      kill -HUP "$(jq .pid data/state/service.json)"   # after editing record.symbols
    """
    import sys
    from dataclasses import replace

    from exchange.logs import configure, current_format
    from service.run import serve

    config = read_run_config(config_path.absolute())  # SIGHUP re-reads it, and state/service.json names it
    top = config.top
    level = top["log_level"] or logging.getLevelName(logging.getLogger().getEffectiveLevel())
    fmt = top["log_format"] or current_format()
    configure(level, fmt)
    data_dir = writable_data_dir(replace(settings, data_dir=Path(top["data_dir"] or settings.data_dir)))
    flags = {"data_dir": str(data_dir), "rest_url": settings.rest_url, "ws_url": settings.ws_url}
    serve(
        config,
        read_run_config,
        {**flags, "log_level": level, "log_format": fmt},
        data_dir,
        _has_flag,
        sys.executable,
    )


def read_run_config(path: Path) -> Any:
    """Read and check a `run` config (service.config.ServiceConfig); ConfigError (one line) if it is bad."""
    from service import config

    return config.check(read_toml(path), path)


def _has_flag(command: str, flag: str) -> bool:
    """Whether this build's `command` ("": the global options) takes --flag (run passes lake and shard on)."""
    found = main if not command else main.commands.get(command)
    return found is not None and any(f"--{flag}" in getattr(param, "opts", ()) for param in found.params)


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

    try:
        since_ms, until_ms = parse_window(since, until)
        wanted = parse_symbols(symbols)
    except ValueError as error:
        raise UserError(str(error)) from None
    lake = settings.open_lake()
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

    from books.rebuild import book_at

    found = book_at(settings.open_lake(), symbol, at, levels)
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


class DatasetChoice(click.Choice[str]):
    """A choice of dataset names and aliases, read from the registry only when used (imports stay lazy)."""

    def __init__(self, names: Callable[[], list[str]]) -> None:
        self._names = names
        super().__init__([])

    @property  # type: ignore[override]
    def choices(self) -> Sequence[str]:
        return self._names()

    @choices.setter
    def choices(self, _: Sequence[str]) -> None:
        pass  # click's __init__ sets them: the registry has them


def _backfill_names() -> list[str]:
    from backfill.series import SERIES
    from schemas import cli_names

    return cli_names([*(series.dataset for series in SERIES.values()), "income"])


def _poll_names() -> list[str]:
    from backfill.account import ACCOUNT_SNAPSHOTS
    from backfill.poll import SNAPSHOTS
    from schemas import cli_names

    return cli_names(snapshot.dataset for snapshot in [*SNAPSHOTS.values(), *ACCOUNT_SNAPSHOTS.values()])


def _cli_name(name: str) -> str:
    """The short name a dataset goes by in this CLI's messages ("funding_rates" -> "funding")."""
    from schemas import cli_name, named

    return cli_name(named(name))


@main.command()
@click.argument("series", type=DatasetChoice(_backfill_names))
@click.option("--symbols", help="Comma-separated symbols, or 'all' (every listed contract); not for income.")
@click.option("--interval", "intervals", help="Comma-separated, for klines and mark-klines [default: 1m].")
@click.option("--since", help="Start: YYYY-MM-DD (UTC) or epoch ms. Default: where the last run stopped.")
@click.option("--until", help="End (exclusive): YYYY-MM-DD (UTC) or epoch ms. Default: now.")
@click.option(
    "--workers",
    default=4,
    show_default=True,
    type=click.IntRange(min=1, max=64),
    help="Symbols walked at once (one rate budget).",
)
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
      BINGX_API_KEY=... BINGX_API_SECRET=... bingx-recorder backfill income --since 2024-06-01
    """
    import sys

    from backfill.arguments import parse_intervals, parse_symbols, parse_window
    from backfill.errors import UnknownSymbol
    from backfill.job import Job, Request, default_state
    from backfill.progress import LogReporter, Reporter, RichReporter
    from backfill.series import SERIES
    from exchange.rest import RestClient

    series = _cli_name(series)
    if series == "income":  # the account's own history: signed, no symbols (backfill/account.py)
        _backfill_income(settings, since, until)
        return
    if not symbols:
        raise UserError(f"backfill {series} needs --symbols, e.g. --symbols BTC-USDT")
    chosen = SERIES[series]
    try:
        since_ms, until_ms = parse_window(since, until)
        wanted = parse_symbols(symbols)
        bars = parse_intervals(intervals, chosen.has_interval, series)
        request = Request(chosen, wanted, bars, since_ms, until_ms)
    except ValueError as error:
        raise UserError(str(error)) from None
    writable_data_dir(settings)
    rich = sys.stderr.isatty()
    reporter: Reporter = RichReporter() if rich else LogReporter()
    with RestClient(settings.rest_url, limiter=rest_budget(settings)) as client:
        state = default_state(settings.data_dir)
        lake = settings.open_lake()
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
    type=DatasetChoice(_poll_names),
)
@click.option("--symbols", help="Comma-separated symbols, or 'all'. [default: all where the endpoint allows]")
@click.option("--every", type=click.FloatRange(min=0.1), help="Poll every SECONDS until stopped or --count.")
@click.option("--count", type=click.IntRange(min=1), help="With --every: stop after N rounds.")
@click.option(
    "--metrics",
    metavar="HOST:PORT",
    help="Serve Prometheus /metrics, /health and /status there, e.g. 127.0.0.1:9464 [off].",
)
@click.pass_obj
def poll(
    settings: Settings,
    snapshot: str,
    symbols: str | None,
    every: float | None,
    count: int | None,
    metrics: str | None = None,
) -> None:
    """Take REST snapshots into their datasets (source='poll'), once or on a schedule.

    On a schedule (--every), a round the exchange fails (5xx after retries, a business error, a 418 ban,
    which is waited out) is logged and the next round comes as usual; one bad item in an answer goes to
    _rejects with its reason while the others land. SIGINT/SIGTERM stop it within a second, even during
    a retry backoff (a request already in flight may take up to its 10 s timeout), with exit code 0.
    Exit code 1 when every round failed.

    \b
    Examples:
      bingx-recorder poll contracts
      bingx-recorder poll premium-index --every 60
      bingx-recorder poll depth --symbols BTC-USDT,ETH-USDT --every 5 --count 12
      BINGX_API_KEY=... BINGX_API_SECRET=... bingx-recorder poll balances --every 60
      bingx-recorder poll open-interest --every 30 --metrics 127.0.0.1:9465   # REST use, rows written
    """
    watch = _watch(settings, metrics, "poll")
    try:
        watch.observe_process()
        _poll(settings, snapshot, symbols, every, count)
    finally:
        watch.close()


def _poll(
    settings: Settings, snapshot: str, symbols: str | None, every: float | None, count: int | None
) -> None:
    import signal
    import threading

    from backfill.account import ACCOUNT_SNAPSHOTS

    snapshot = _cli_name(snapshot)
    if snapshot in ACCOUNT_SNAPSHOTS:
        _poll_account(settings, snapshot, every, count)
        return
    from backfill.arguments import parse_symbols
    from backfill.contracts import listings, resolve
    from backfill.poll import SNAPSHOTS, PollSummary, Stopped, interruptible_sleep
    from backfill.poll import poll as poll_snapshots
    from exchange.rest import RestClient

    if count is not None and every is None:
        raise UserError("--count needs --every (without it, poll takes one snapshot)")
    chosen = SNAPSHOTS[snapshot]
    writable_data_dir(settings)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    sleep = interruptible_sleep(stop)  # a stop cuts a retry backoff or a pacing wait short
    with RestClient(settings.rest_url, sleep=sleep, limiter=rest_budget(settings, sleep)) as client:
        try:
            wanted = parse_symbols(symbols)
            if wanted is not None or chosen.per_symbol:
                wanted = resolve(wanted, listings(client))
        except ValueError as error:  # UnknownSymbol included
            raise UserError(str(error)) from None
        except Stopped:
            click.echo(PollSummary(snapshot).line())
            return
        lake = settings.open_lake()
        summary = poll_snapshots(client, lake, chosen, wanted, every_s=every, count=count, stop=stop)
    if summary.rounds and summary.failed == summary.rounds:
        raise UserError(f"poll {snapshot}: all {summary.rounds} rounds failed; last: {summary.last_error}")
    click.echo(summary.line())


# --- account commands: signed REST (backfill income, poll balances|positions|commission-rates) ---


def credentials(settings: Settings, config: Path | None = None) -> Any:
    """The API key and secret: from BINGX_API_KEY / BINGX_API_SECRET, else from the config file's api_key /
    api_secret (`record --config`, or the file BINGX_CONFIG names). Never from a flag: flags end up in shell
    history and process lists. A missing one is a one-line UserError saying which."""
    from exchange.signing import Credentials

    key, secret = settings.api_key, settings.api_secret
    path = config or (Path(os.environ["BINGX_CONFIG"]) if os.environ.get("BINGX_CONFIG") else None)
    if (not key or not secret) and path is not None:
        try:
            document = read_toml(path)
        except ConfigError as error:
            raise UserError(
                f"config {path}: cannot read the API key from it: {type(error.__cause__).__name__}"
            ) from None
        found = {**document, **document.get("record", {}), **document.get("credentials", {})}
        key = key or (str(found["api_key"]) if found.get("api_key") else None)
        secret = secret or (str(found["api_secret"]) if found.get("api_secret") else None)
    if not key:
        raise UserError("no API key: set BINGX_API_KEY (or api_key in the config file) for account data")
    if not secret:
        raise UserError("no API secret: set BINGX_API_SECRET (or api_secret in the config file)")
    return Credentials(key, secret)


def signed_client(settings: Settings, config: Path | None = None) -> Any:
    """A SignedClient on the server's clock; a wrong key or secret fails here, as one line."""
    from exchange.signed import SignedClient, account_limiter

    client = SignedClient(settings.rest_url, credentials(settings, config), limiter=account_limiter())
    client.measure_offset()
    return client


def _backfill_income(settings: Settings, since: str | None, until: str | None) -> None:
    from backfill.account import backfill_income
    from backfill.arguments import parse_window
    from storage.state import State

    try:
        since_ms, until_ms = parse_window(since, until)
    except ValueError as error:
        raise UserError(str(error)) from None
    with signed_client(settings) as client:
        now_ms = int(client.wall_clock() * 1000)
        state = State(settings.data_dir / "state")
        summary = backfill_income(client, settings.open_lake(), state, since_ms, until_ms, now_ms)
    click.echo(summary.line())


def _poll_account(settings: Settings, name: str, every: float | None, count: int | None) -> None:
    import signal
    import threading

    from backfill.account import ACCOUNT_SNAPSHOTS
    from backfill.poll import poll as poll_snapshots

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with signed_client(settings) as client:
        snapshot = ACCOUNT_SNAPSHOTS[name]
        summary = poll_snapshots(
            client, settings.open_lake(), snapshot, None, every_s=every, count=count, stop=stop
        )
    click.echo(summary.line())


def rest_budget(settings: Settings, sleep: Callable[[float], object] | None = None) -> Any:
    """The host's one REST budget: a file-locked log in the data dir that every job draws from."""
    from exchange.ratelimit import SharedLimiter

    path = settings.data_dir / "state" / "rest-budget.json"
    return SharedLimiter(path) if sleep is None else SharedLimiter(path, sleep=sleep)


# --- completeness commands: heal, coverage ---

HEAL_DATASETS = "trades,klines,funding_rates,mark_klines"


@main.command()
@click.option("--symbols", default="all", show_default=True, help="Comma-separated symbols, or 'all'.")
@click.option("--since", help="Only outages ending after: YYYY-MM-DD[THH:MM] (UTC) or epoch ms.")
@click.option("--until", help="Only outages starting before: YYYY-MM-DD[THH:MM] (UTC) or epoch ms.")
@click.option("--datasets", default=HEAL_DATASETS, show_default=True, help="What to fetch from REST.")
@click.option("--dry-run", is_flag=True, help="List the REST windows that would be fetched; write nothing.")
@click.pass_obj
def heal(
    settings: Settings, symbols: str, since: str | None, until: str | None, datasets: str, dry_run: bool
) -> None:
    """Fill the stream's outage windows (stream_gaps) from REST history (source='backfill').

    Trades come from historicalTrades by id over each window (edges included), klines for every recorded
    interval, funding and mark klines in the window. Idempotent (a re-run writes nothing), safe to kill,
    and it shares the host's REST budget with record, backfill and poll. Windows that cannot be healed
    (depth, incrDepth, ... or older than REST history) are listed by `coverage`.

    \b
    Example:
      bingx-recorder heal --symbols BTC-USDT,ETH-USDT --since 2024-06-01
      bingx-recorder heal --dry-run
    """
    from backfill.heal import HEALABLE

    wanted = [name.strip() for name in datasets.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in HEALABLE]
    if unknown or not wanted:
        raise UserError(f"--datasets {datasets!r}: choose from {', '.join(HEALABLE)}")
    summary = run_heal(settings, _symbols(symbols), _window(since, until), wanted, dry_run)
    if dry_run:
        for task in summary.planned:
            click.echo(
                f"{task.dataset} {task.symbol} {task.interval or '-'} [{task.start_ms}, {task.end_ms})"
            )
    click.echo(summary.line())


def run_heal(
    settings: Settings,
    symbols: list[str] | None,
    window: tuple[Any, Any],
    datasets: Sequence[str],
    dry_run: bool = False,
) -> Any:
    """Plan and run one heal pass over the lake's outage windows."""
    from backfill.heal import Healer, plan
    from backfill.job import default_state
    from exchange.rest import RestClient
    from storage.gaps import outages
    from storage.views import connect

    since, until = window
    with connect(settings.lake) as con:
        found = [
            o
            for o in outages(con)
            if (symbols is None or o.symbol in symbols)
            and (since is None or o.end > since)
            and (until is None or o.start < until)
        ]
    with RestClient(settings.rest_url, limiter=rest_budget(settings)) as client:
        healer = Healer(client, settings.open_lake(), default_state(settings.data_dir))
        return healer.run(plan(found, datasets), dry_run=dry_run)


def _symbols(text: str | None) -> list[str] | None:
    from backfill.arguments import parse_symbols

    try:
        return parse_symbols(text)
    except ValueError as error:
        raise UserError(str(error)) from None


def _window(since: str | None, until: str | None) -> tuple[Any, Any]:
    from datetime import UTC, datetime

    from backfill.arguments import parse_window

    try:
        since_ms, until_ms = parse_window(since, until)
    except ValueError as error:
        raise UserError(str(error)) from None
    start, end = (
        None if ms is None else datetime.fromtimestamp(ms / 1000, UTC) for ms in (since_ms, until_ms)
    )
    return start, end


def show_parity(settings: Settings, symbols: list[str] | None, fmt: str) -> None:
    """Print `coverage --parity`: shares of stream trades and bars that REST confirms."""
    import json

    from backfill.job import default_state
    from report.parity import parity
    from storage.views import connect

    with connect(settings.lake) as con:
        found = parity(con, settings.open_lake(), default_state(settings.data_dir), symbols)
    click.echo(json.dumps(found.as_json(), indent=2) if fmt == "json" else found.lines())


OPEN_EXIT = 3  # coverage: open gaps (or --fail-on classes) longer than --max-gap


@main.command()
@click.option("--since", help="Start: YYYY-MM-DD[THH:MM] (UTC) or epoch ms [first recorded frame].")
@click.option("--until", help="End: YYYY-MM-DD[THH:MM] (UTC) or epoch ms [last recorded frame].")
@click.option("--symbols", default="all", show_default=True, help="Comma-separated symbols, or 'all'.")
@click.option("--datasets", help="Comma-separated datasets (trades,klines,book_updates,...) [all recorded].")
@click.option("--by", type=click.Choice(["hour", "day"]), default="hour", show_default=True)
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True
)
@click.option("--html", type=click.Path(dir_okay=False, path_type=Path), help="Also write a heatmap page.")
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path), help="Also write a heatmap PNG.")
@click.option("--max-gap", type=click.FloatRange(min=0), help="Exit 3 when open gaps exceed SECONDS.")
@click.option("--fail-on", default="", help="More classes counted against --max-gap, e.g. unhealable.")
@click.option("--parity", is_flag=True, help="Instead: how far stream and REST agree where both recorded.")
@click.pass_obj
def coverage(
    settings: Settings,
    since: str | None,
    until: str | None,
    symbols: str,
    datasets: str | None,
    by: str,
    fmt: str,
    html: Path | None,
    png: Path | None,
    max_gap: float | None,
    fail_on: str,
    parity: bool,
) -> None:
    """Prove completeness: per dataset × symbol × hour, seconds covered, rows, expected rows, every gap.

    Gap classes: healed, unhealable (no REST history: depth, incrDepth, ticker, ...), beyond_history,
    quiet (silence, and REST agrees nothing traded), not_listed (contracts: not tradable), open (not
    healed yet). Exit status 3 when the seconds in open gaps (plus --fail-on classes) exceed --max-gap
    (default with --fail-on: 0), for cron and Airflow alerts.

    \b
    Example:
      bingx-recorder coverage --since 2024-06-01 --until 2024-06-02
      bingx-recorder coverage --format json --max-gap 0 || echo "gaps to heal"
      bingx-recorder coverage --html coverage.html --png coverage.png --fail-on unhealable
      bingx-recorder coverage --parity    # stream vs REST where both recorded: 100.00% matched
    """
    from backfill.job import default_state
    from report.coverage import CLASSES, build
    from report.render import as_csv, as_json, as_table
    from storage.views import connect

    extra = [name.strip() for name in fail_on.split(",") if name.strip()]
    if any(name not in CLASSES for name in extra):
        raise UserError(f"--fail-on {fail_on!r}: choose from {', '.join(CLASSES)}")
    start, end = _window(since, until)
    names = [name.strip() for name in datasets.split(",")] if datasets else None
    if parity:
        show_parity(settings, _symbols(symbols), fmt)
        return
    with connect(settings.lake) as con:
        report = build(
            con,
            default_state(settings.data_dir),
            since=start,
            until=end,
            symbols=_symbols(symbols),
            datasets=names,
            by=by,
        )
    click.echo({"json": as_json, "csv": as_csv, "table": as_table}[fmt](report))
    if html is not None or png is not None:
        from report.heatmap import write_html, write_png

        if html is not None:
            write_html(report, html)
        if png is not None:
            write_png(report, png)
    limit = max_gap if max_gap is not None else (0.0 if extra else None)
    if limit is not None and report.seconds_in(["open", *extra]) > limit:
        raise click.exceptions.Exit(OPEN_EXIT)


# --- lake maintenance: compact, prune, rebuild ---


def _day(text: str, flag: str) -> Any:
    from datetime import date

    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{flag} {text!r}: expected a day as YYYY-MM-DD") from None


def _seconds(text: str) -> float:
    """Parse a duration such as 90s, 30m, 1h or 2d."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = text[:-1], text[-1:]
    if unit not in units or not number.replace(".", "", 1).isdigit():
        raise UserError(f"--older-than {text!r}: expected a duration such as 90s, 30m, 1h or 2d")
    return float(number) * units[unit]


def _datasets(names: str | None, default: Any) -> Any:
    from schemas import DATASETS

    if names is None:
        return default
    chosen = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in chosen if name not in DATASETS]
    if unknown:
        raise UserError(f"--datasets: unknown {', '.join(unknown)}; known: {', '.join(DATASETS)}")
    return [DATASETS[name] for name in chosen]


@main.command()
@click.option("--datasets", help="Comma-separated datasets [default: all but raw_messages].")
@click.option("--before", help="Compact days before this one (YYYY-MM-DD, UTC).")
@click.option("--older-than", default="1h", show_default=True, help="Compact days that ended this long ago.")
@click.option(
    "--grace",
    type=click.FloatRange(min=0),
    default=300.0,
    show_default=True,
    help="Seconds old files stay for readers that listed them (0: delete at once).",
)
@click.option("--dry-run", is_flag=True, help="List the days that would be compacted; change nothing.")
@click.pass_obj
def compact(
    settings: Settings,
    datasets: str | None,
    before: str | None,
    older_than: str,
    grace: float,
    dry_run: bool,
) -> None:
    """Rewrite closed days into one file per dataset x symbol x day holding exactly the views' rows.

    Rows the views do not show move to lake/_superseded/ (pruned with raw_messages). One compactor per
    lake at a time (a lease); safe to kill and re-run; `record` runs it by itself for closed days.

    \b
    Examples:
      bingx-recorder compact --dry-run
      bingx-recorder compact --datasets trades,klines --before 2024-07-01 --grace 0
    """
    import time
    from datetime import UTC, datetime, timedelta

    from storage.compact import compact as run_compact
    from storage.compact import compactable

    cut = (
        _day(before, "--before")
        if before
        else (datetime.now(UTC) - timedelta(seconds=_seconds(older_than))).date()
    )
    chosen = _datasets(datasets, compactable())
    summary = run_compact(settings.open_lake(), chosen, cut, grace_s=grace, dry_run=dry_run, clock=time.time)
    for line in summary.days:
        click.echo(line)
    verb = "would compact" if dry_run else "compacted"
    click.echo(
        f"compact: {verb} {len(summary.days)} dataset-days before {cut}, {summary.rows} rows kept, "
        f"{summary.files_removed} old files removed, {len(summary.pending)} waiting for their grace"
    )


@main.command()
@click.option(
    "--keep-raw", type=click.IntRange(min=0), default=7, show_default=True, help="Days of raw kept."
)
@click.option("--journal-archive", type=click.Path(path_type=Path), help="Also prune this journal archive.")
@click.option("--datasets", help="Also prune these normalized datasets (needs --keep-data).")
@click.option("--keep-data", type=click.IntRange(min=0), help="Days of the --datasets kept.")
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@click.pass_obj
def prune(
    settings: Settings,
    keep_raw: int,
    journal_archive: Path | None,
    datasets: str | None,
    keep_data: int | None,
    dry_run: bool,
) -> None:
    """Delete raw_messages, superseded rows and archived journal segments older than --keep-raw days.

    Normalized datasets are kept unless named with --datasets and --keep-data.

    \b
    Examples:
      bingx-recorder prune --dry-run
      bingx-recorder prune --keep-raw 3 --journal-archive ./data/archive
      bingx-recorder prune --datasets depth_snapshots --keep-data 30
    """
    from storage.retention import prune as run_prune

    if (datasets is None) != (keep_data is None):
        raise UserError("--datasets and --keep-data go together")
    names = [dataset.name for dataset in _datasets(datasets, [])]
    pruned = run_prune(settings.open_lake(), keep_raw, journal_archive, names, keep_data, dry_run)
    for path in pruned.paths:
        click.echo(path)
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"prune: {verb} {len(pruned.paths)} day folders and files, {pruned.bytes / 1e6:,.1f} MB")


@main.command()
@click.option("--datasets", required=True, help="Comma-separated stream datasets to re-derive.")
@click.option("--since", required=True, help="First event day (YYYY-MM-DD, UTC).")
@click.option("--until", help="Day after the last (exclusive) [default: today].")
@click.option("--grace", type=click.FloatRange(min=0), default=300.0, show_default=True, help="As compact's.")
@click.pass_obj
def rebuild(settings: Settings, datasets: str, since: str, until: str | None, grace: float) -> None:
    """Re-derive stream datasets from raw_messages (after a converter fix), replacing their stream rows.

    Each partition switches from its old rows to the new ones in one rename: no view ever shows both.
    Rows of other sources stay; stream rows whose raw frames were pruned stay as they are.

    \b
    Example:
      bingx-recorder rebuild --datasets trades,klines --since 2024-06-01 --until 2024-06-08
    """
    from datetime import UTC, datetime

    from storage.rebuild import rebuild as run_rebuild

    first = _day(since, "--since")
    last = _day(until, "--until") if until else datetime.now(UTC).date()
    lake = settings.open_lake()
    for dataset in _datasets(datasets, []):
        done = run_rebuild(lake, dataset, first, last, grace_s=grace)
        click.echo(
            f"rebuild {dataset.name}: {done.days} days, {done.partitions} partitions, "
            f"{done.derived} rows re-derived, {done.unconvertible} frames the converter rejects"
        )


if __name__ == "__main__":
    main()
