"""The README cannot rot: its datasets table is the registry's, and every command has a worked example."""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from cli import main

README = Path(__file__).parent.parent / "README.md"


def _readme_table() -> str:
    text = README.read_text()
    start = text.index("<!-- datasets-table")
    start = text.index("\n", start) + 1
    return text[start : text.index("<!-- /datasets-table -->")].strip()


def test_readme_datasets_table_is_the_registry() -> None:
    result = CliRunner().invoke(main, ["datasets", "--format", "markdown"])
    assert result.exit_code == 0, result.output
    assert _readme_table() == result.output.strip(), "regenerate: bingx-recorder datasets --format markdown"


def test_readme_opens_with_demo_then_test() -> None:
    first_block = README.read_text().split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines() if line.strip()]
    assert [c for c in commands if c][:2] == ["make demo", "make test"]


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    found = []
    for name, command in group.commands.items():
        found.append((f"{prefix}{name}", command))
        if isinstance(command, click.Group):
            found += _commands(command, f"{prefix}{name} ")
    return found


def test_every_command_has_help_with_an_example() -> None:
    commands = _commands(main)
    assert {"datasets", "sql", "views", "simulate", "record", "backfill", "poll"} <= {n for n, _ in commands}
    for name, _ in commands:
        result = CliRunner().invoke(main, [*name.split(), "--help"])
        assert result.exit_code == 0, result.output
        assert "Example" in result.output, f"`bingx-recorder {name} --help` has no worked example"
        assert "bingx-recorder" in result.output.split("Example", 1)[1], name
