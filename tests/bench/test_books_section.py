"""The books bench section runs end to end at smoke size and reports every figure it promises."""

from __future__ import annotations

from pathlib import Path

from bench import books
from bench.harness import Config


def test_books_section_measures_apply_rate_book_at_and_the_converter(tmp_path: Path) -> None:
    figures = books.run(Config(smoke=True, repeats=1, cache=tmp_path, work=tmp_path / "work"))
    names = {item.name: item for item in figures}
    for name in (
        "updates applied (engine)",
        "updates applied + book_snapshots 25@100ms",
        "book_at (Python, warm process)",
        "bingx-recorder book --at (new process)",
        "converter CPU, snapshots on / off",
    ):
        assert names[name].available and names[name].median > 0, name
    assert names["book_at (Python, warm process)"].target == "<= 200"
