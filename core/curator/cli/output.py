"""Writing command output: JSON on stdout for machines, rich tables for people."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

WIDE = 200


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _console() -> Console:
    from rich.console import Console

    console = Console()
    if not console.is_terminal:
        # Piped into a file or grep: do not fold names to fit an imaginary 80 columns.
        console.width = WIDE
    return console


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Write a table on stdout (rich is imported only here, for people)."""
    from rich.table import Table

    table = Table(title=title, title_justify="left", expand=False)
    # Columns nobody filled in (say, "detail" when all is well) only cost width.
    keep = [i for i in range(len(columns)) if i == 0 or any(row[i] for row in rows)]
    for position in keep:
        table.add_column(columns[position], overflow="fold", no_wrap=position == 0)
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    _console().print(table)


def print_fields(title: str, fields: Sequence[tuple[str, str]]) -> None:
    """Write ``name: value`` lines under a bold title."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, style="bold")
    grid.add_column(overflow="fold")
    for name, value in fields:
        grid.add_row(name, value)
    console = _console()
    console.print(title, style="bold underline", highlight=False)
    console.print(grid, highlight=False)


def warn(message: str) -> None:
    """Write a warning on stderr."""
    sys.stderr.write(f"curator: warning: {message}\n")


def error(message: str) -> None:
    """Write an error on stderr."""
    sys.stderr.write(f"curator: error: {message}\n")
