"""A dataset read over REST, as backfill and poll see it: its name, path and paging are the registry's."""

from __future__ import annotations

from dataclasses import dataclass

from schemas import DATASETS, Dataset, cli_name


@dataclass(frozen=True)
class Endpoint:
    """One dataset's REST endpoint, looked up in schemas.DATASETS."""

    dataset: str  # key in schemas.DATASETS

    @property
    def spec(self) -> Dataset:
        return DATASETS[self.dataset]

    @property
    def name(self) -> str:  # the CLI argument
        return cli_name(self.spec)

    @property
    def path(self) -> str:
        return self.spec.rest_path or ""
