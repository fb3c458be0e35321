"""A flag that sets one value, given again with another value, is refused.

argparse keeps the last value and says nothing: ``--indices 0:5 --indices 6:8``
quietly ran items 6 and 7 for a user who meant both ranges, and
``-b thread-pool -b process-pool`` ran on the process pool. So is a flag that
contradicts another of the same setting (``--metrics`` then ``--no-metrics``,
``--all-metrics`` then ``--no-metrics``). Flags that collect (``-o``,
``--reporter``) are not concerned; the same value twice is harmless and accepted.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

_GIVEN = "_flags_given"
"""The namespace's record of the flags given so far: destination -> (flag, value shown, value)."""


class _Once(argparse.Action):
    """Mixed into a store action: a second, different value for its setting is an error."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        super().__call__(parser, namespace, values, option_string)
        if option_string is None:  # a positional argument: argparse refuses one too many
            return
        given: dict[str, tuple[str, Any]] = namespace.__dict__.setdefault(_GIVEN, {})
        shown = option_string if self.nargs == 0 else f"{option_string} {values}"
        value = getattr(namespace, self.dest)
        earlier = given.get(self.dest)
        if earlier is not None and earlier[1] != value:
            parser.error(f"{earlier[0]} and {shown} both given: give one")
        given[self.dest] = (shown, value)


_ONCE: dict[type[argparse.Action], type[argparse.Action]] = {}


def refuse_repeats(parser: argparse.ArgumentParser) -> None:
    """Make every flag of ``parser`` and its subcommands that sets one value refuse another."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in {id(sub): sub for sub in action.choices.values()}.values():
                refuse_repeats(sub)
        elif isinstance(
            action,
            (argparse._StoreAction, argparse._StoreConstAction, argparse.BooleanOptionalAction),
        ) and not isinstance(action, _Once):
            kind: type[argparse.Action] = type(action)
            if kind not in _ONCE:
                _ONCE[kind] = type(f"{kind.__name__}Once", (_Once, kind), {})
            _become(action, _ONCE[kind])


def _become(action: argparse.Action, kind: type[argparse.Action]) -> None:
    """Give ``action`` the class ``kind`` (a subclass of its own: same state, checked calls)."""
    action.__class__ = kind
