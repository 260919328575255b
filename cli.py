"""The composition root: the only module that reads flags, environment and config, wires the packages
together, and turns errors a user can act on into one line and exit code 1. Bugs keep their traceback."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from backfill.errors import PagingError
from exchange.errors import FatalError
from storage.errors import SchemaMismatch

LIVE_REST_URL = "https://open-api.bingx.com"
LIVE_WS_URL = "wss://open-api-swap.bingx.com/swap-market"


class UserError(Exception):
    """A bad argument, config or state the user can fix; printed as one line."""


USER_ERRORS = (FatalError, UserError, SchemaMismatch, PagingError)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    rest_url: str
    ws_url: str

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
    ctx.obj = Settings(data_dir=data_dir, rest_url=rest_url.rstrip("/"), ws_url=ws_url)


# --- storage commands: sql, views ---

# --- simulator commands: simulate ---

# --- recorder commands: record ---

# --- backfill commands: backfill, poll ---


if __name__ == "__main__":
    main()
