r"""Text from items made safe to print: control characters shown, never obeyed.

An item's exception message and traceback are the user's data. Printed as
they are, an escape sequence in them could recolour the terminal, set its
title, clear the screen, or (with ``\r`` and ``\n``) forge a line of a log
that someone greps later. Everything curator prints of them goes through
:func:`printable`; JSON output needs nothing (``json`` escapes them already),
nor does the HTML report (text, not markup).
"""

from __future__ import annotations

_SHOWN = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
_SHOWN.update({ord("\r"): "\\r", ord("\n"): "\\n", ord("\t"): "\\t"})
# Bidirectional overrides reorder what the reader sees ("Trojan Source").
_SHOWN.update({code: f"\\u{code:04x}" for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))})

_ONE_LINE = str.maketrans(_SHOWN)
_LINES = str.maketrans({code: text for code, text in _SHOWN.items() if chr(code) not in "\n\t"})


def printable(text: str, lines: bool = False) -> str:
    r"""``text`` with its control characters written as escapes (``\x1b``, ``\r``).

    ``lines``: keep newlines and tabs (a traceback); otherwise the result is one line.
    """
    if text.isprintable() and not lines:
        return text
    return text.translate(_LINES if lines else _ONE_LINE)
