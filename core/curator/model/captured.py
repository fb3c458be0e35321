"""What one item printed, as data: :class:`Captured` (see :mod:`curator.observing.capture`)."""

from __future__ import annotations

from typing import Any

from curator.model.record import FrozenRecord

LIMIT = 64 * 1024
"""Characters of output kept per item: the last 64 KiB of it."""


class Captured(FrozenRecord):
    """What one item printed.

    Attributes
    ----------
    text
        The last :data:`LIMIT` characters written to stdout, stderr and
        logging while the item ran, interleaved as written.
    dropped
        How many characters before those were dropped.
    """

    _fields = ("text", "dropped")
    __slots__ = _fields
    text: str
    dropped: int

    def __init__(self, text: str, dropped: int = 0) -> None:
        self._set(text, dropped)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; :meth:`from_json` reads it back."""
        return {"text": self.text, "dropped": self.dropped}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Captured:
        """The output :meth:`to_json` described."""
        text, dropped = data["text"], data.get("dropped", 0)
        if not isinstance(text, str) or not isinstance(dropped, int):
            raise ValueError("captured output that is not text")
        return cls(text, dropped)

    def lines(self) -> list[str]:
        """The text's lines, after a note on what was dropped, if anything was."""
        lines = self.text.splitlines()
        if self.dropped:
            lines.insert(0, f"[{self.dropped} earlier characters dropped]")
        return lines
