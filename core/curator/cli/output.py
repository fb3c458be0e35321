"""Writing command output: JSON on stdout for machines, rich tables for people."""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

WIDE = 200
"""Columns of output into a pipe or file when ``COLUMNS`` is not set: grep sees whole rows."""

# Trailing blanks, possibly followed by style resets, at the end of a line.
_TRAILING = re.compile(r"[ \t]+((?:\x1b\[[0-9;]*m)*)$", re.MULTILINE)


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON on stdout."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def _console() -> Console:
    from rich.console import Console

    console = Console(file=sys.stdout)
    if not console.is_terminal and not os.environ.get("COLUMNS", "").strip().isdigit():
        # Piped into a file or grep: do not fold names to fit an imaginary 80 columns.
        console.width = WIDE
    return console


def _write(*renderables: Any) -> None:
    """Lay ``renderables`` out for stdout (its width, or ``COLUMNS``) without trailing blanks."""
    console = _console()
    with console.capture() as captured:
        for renderable in renderables:
            console.print(renderable, highlight=False)
    text = captured.get()
    while True:  # a blank may hide behind another style reset
        stripped = _TRAILING.sub(r"\1", text)
        if stripped == text:
            break
        text = stripped
    sys.stdout.write(text)
    sys.stdout.flush()


PROSE_COLUMNS = frozenset(
    {"description", "detail", "help", "error", "parameters", "pipeline", "provides", "type"}
)
"""Columns of sentences, wrapped at word boundaries; the others hold names and stay whole."""


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Write a table on stdout (rich is imported only here, for people).

    When the terminal (or ``COLUMNS``) is too narrow for the table without
    cutting a word, each row is printed as a block of ``name value`` lines.
    """
    from rich import box
    from rich.table import Table

    # Columns nobody filled in (say, "detail" when all is well) only cost width.
    keep = [i for i in range(len(columns)) if i == 0 or any(row[i] for row in rows)]
    if _narrowest(columns, rows, keep) > _console().width:
        _print_blocks(title, columns, rows, keep)
        return
    table = Table(
        title=title,
        title_justify="left",
        expand=False,
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    for position in keep:
        prose = columns[position] in PROSE_COLUMNS
        table.add_column(columns[position], overflow="fold", no_wrap=not prose)
    for row in rows:
        table.add_row(*(row[i] for i in keep))
    _write(table)


def _narrowest(columns: Sequence[str], rows: Sequence[Sequence[str]], keep: list[int]) -> int:
    """The least width the table takes with every name whole and no word cut."""
    width = 0
    for position in keep:
        cells = [columns[position], *(row[position] for row in rows)]
        if columns[position] in PROSE_COLUMNS:
            width += max(len(word) for cell in cells for word in cell.split() or [""])
        else:
            width += max(len(cell) for cell in cells)
    return width + 2 * (len(keep) - 1) + 1  # column gaps, and the edge


def _print_blocks(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], keep: list[int]
) -> None:
    from rich.table import Table
    from rich.text import Text

    blocks: list[Any] = [Text(title, style="bold underline")]
    for row in rows:
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True, style="bold")
        grid.add_column(overflow="fold")
        for position in keep:
            grid.add_row(columns[position], row[position])
        blocks += [Text(""), grid]
    _write(*blocks)


def print_fields(title: str, fields: Sequence[tuple[str, str]]) -> None:
    """Write ``name: value`` lines under a bold title."""
    from rich.table import Table
    from rich.text import Text

    grid = Table.grid(padding=(0, 2))
    grid.add_column(no_wrap=True, style="bold")
    grid.add_column(overflow="fold")
    for name, value in fields:
        grid.add_row(name, value)
    _write(Text(title, style="bold underline"), grid)


def print_text(text: str) -> None:
    """Write plain text (no markup, no highlighting) on stdout."""
    from rich.text import Text

    _write(Text(text))


def warn(message: str) -> None:
    """Write a warning on stderr."""
    sys.stderr.write(f"curator: warning: {message}\n")


def error(message: str) -> None:
    """Write an error on stderr."""
    sys.stderr.write(f"curator: error: {message}\n")
