"""Writing command output: JSON on stdout for machines, rich tables for people."""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from rich.console import Console

WIDE = 200
"""Columns of output into a pipe or file when ``COLUMNS`` is not set: grep sees whole rows."""

# Trailing blanks, possibly followed by style resets, at the end of a line.
_TRAILING = re.compile(r"[ \t]+((?:\x1b\[[0-9;]*m)*)$", re.MULTILINE)


_reserved: TextIO | None = None
"""Inside :func:`reserve_stdout`: the real stdout, kept for the command's own output."""

_reserved_until_exit = False


def _stdout() -> TextIO:
    """Where the command's own output goes: the real stdout."""
    return _reserved if _reserved is not None else sys.stdout


def command_stdout() -> TextIO:
    """Where the command's own output goes: the real stdout, also inside :func:`reserve_stdout`."""
    return _stdout()


@contextlib.contextmanager
def reserve_stdout() -> Iterator[None]:
    """Keep stdout for the command's own output; everything else written meanwhile goes to stderr.

    Code a command runs (a pipeline's module as it is imported, its items,
    threads they start, worker processes started meanwhile) may write to
    stdout past any capture: through ``sys.stdout.buffer``, to file descriptor
    1 (``os.write``, a C library). Inside the block file descriptor 1 is a copy
    of stderr's, and so is ``sys.stdout``; what this module prints
    (:func:`print_json`, ...) goes to the real stdout, kept on a descriptor of
    its own. Afterwards stdout is put back, unless
    :func:`reserve_stdout_until_exit` said the process ends with the command.
    """
    global _reserved
    stdout = sys.stdout
    stdout.flush()
    kept = _point_fd_1_at_stderr()
    on_fd_1 = _on_fd_1(stdout)
    if on_fd_1 and kept is not None:
        reserved: TextIO = open(  # noqa: SIM115 - closed below, after fd 1 is put back
            os.dup(kept), "w", encoding=stdout.encoding, errors=stdout.errors
        )
    else:
        reserved = stdout
        sys.stdout = sys.stderr
    _reserved = reserved
    try:
        yield
    finally:
        _reserved = None
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        if reserved is stdout:
            if sys.stdout is sys.stderr:
                sys.stdout = stdout
        else:
            with contextlib.suppress(OSError):  # a reader gone: the command said so already
                reserved.close()
        if kept is not None:
            if not _reserved_until_exit:
                os.dup2(kept, 1)
            os.close(kept)


def _on_fd_1(stream: TextIO) -> bool:
    """Whether ``stream`` writes to file descriptor 1 (a harness's stream, pytest's, does not)."""
    try:
        return stream.fileno() == 1
    except (AttributeError, ValueError, OSError):
        return False


@contextlib.contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send what is written to stdout meanwhile to stderr; put stdout back afterwards, always.

    For importing a pipeline's module: what it prints is not the command's
    output (``status --json`` must print JSON only), and no output of the
    command itself is written meanwhile. Unlike :func:`reserve_stdout`,
    stdout is put back even when :func:`reserve_stdout_until_exit` was called,
    for the command's output that follows. Inside :func:`reserve_stdout`
    this changes nothing: stdout is stderr already.
    """
    if _reserved is not None:
        yield
        return
    stdout = sys.stdout
    with contextlib.suppress(Exception):
        stdout.flush()
    kept = _point_fd_1_at_stderr()
    on_fd_1 = _on_fd_1(stdout)
    # On file descriptor 1, sys.stdout stays the same object (a module may keep it, say
    # for a logging handler, and its later writes belong on stdout): what it buffers is
    # flushed below while 1 is still stderr's copy. Any other stream is swapped meanwhile.
    swapped = not (on_fd_1 and kept is not None)
    if swapped:
        sys.stdout = sys.stderr
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        if swapped and sys.stdout is sys.stderr:  # else the module replaced it: its choice
            sys.stdout = stdout
        if kept is not None:
            os.dup2(kept, 1)
            os.close(kept)


def _point_fd_1_at_stderr() -> int | None:
    """Make file descriptor 1 a copy of 2; return a descriptor of what 1 was (``None``: no swap)."""
    try:
        kept = os.dup(1)
    except OSError:  # no stdout at all
        return None
    try:
        os.dup2(2, 1)
    except OSError:  # no stderr: leave stdout as it is
        os.close(kept)
        return None
    return kept


def reserve_stdout_until_exit() -> None:
    """For the ``curator`` process itself: stdout a command reserved stays so until it exits.

    A thread an item started may outlive the run; what it writes after the
    command's output must not land on stdout either.
    """
    global _reserved_until_exit
    _reserved_until_exit = True


def print_json(data: Any) -> None:
    """Write ``data`` as indented JSON on stdout."""
    out = _stdout()
    out.write(json.dumps(data, indent=2, default=str) + "\n")
    out.flush()


def _console() -> Console:
    from rich.console import Console

    console = Console(file=_stdout())
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
    out = _stdout()
    out.write(text)
    out.flush()


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
