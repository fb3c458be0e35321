"""A shard-style stage whose merged output shows each item's rows: counted twice, lost, or stray.

:class:`ShardRows` follows the origin's shard style (see :mod:`curator.model.shards`):
``flush()`` appends one line per item it saw since the last flush, and the
static ``merge`` concatenates the shards. :func:`rows` reads the merged file
back, so a test compares it with the items recorded ``ok`` in one line. On
request its ``flush()`` ends its process right after writing: rows on disk
whose item's record never reaches the run, the way a worker (or, on the
sequential backend, the run itself) dies.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from curator.model.pipeline import Filter
from curator.testing.probes import Crash, claim, crash


class ShardRows(Filter[int]):
    """Each item's index, one line per flush, in its shard; ``merge`` concatenates the shards.

    Parameters
    ----------
    output_path
        Where ``merge`` writes every shard's lines.
    die_in_flush
        Indices whose ``flush()`` ends its process (``how``) right after writing
        their rows, the first time only: the first such flush claims
        ``died.<index>`` in ``folder``.
    folder
        Where the claims go (needed with ``die_in_flush``).
    how
        How the process ends (see :func:`curator.testing.probes.crash`).
    """

    def __init__(
        self,
        output_path: str,
        die_in_flush: frozenset[int] = frozenset(),
        folder: str = "",
        how: Crash = "exit",
    ) -> None:
        self.output_path = output_path
        self.die_in_flush = die_in_flush
        self.folder = folder
        self.how: Crash = how
        self.rows: list[int] = []

    def __call__(self, items: Iterator[int]) -> Iterator[int]:
        """Note each item; pass it on."""
        for item in items:
            self.rows.append(item)
            yield item

    def reset(self) -> None:
        """Drop what a failed item gathered."""
        self.rows = []

    def flush(self) -> str | None:
        """Append the rows gathered since the last flush to the shard (then die, if asked)."""
        if not self.rows:
            return None
        gathered, self.rows = self.rows, []
        with open(self.output_path, "a") as shard:
            shard.write("".join(f"{row}\n" for row in gathered))
        dying = self.die_in_flush.intersection(gathered)
        if dying and claim(self.folder, f"died.{min(dying)}"):
            crash(self.how)
        return self.output_path

    @staticmethod
    def merge(paths: list[str], output: str) -> str:
        """Concatenate the shards into ``output``."""
        Path(output).write_text("".join(Path(p).read_text() for p in paths))
        return output


def rows(output: str | os.PathLike[str]) -> list[int]:
    """The rows a :class:`ShardRows` stage merged into ``output``."""
    return [int(line) for line in Path(output).read_text().split()]
