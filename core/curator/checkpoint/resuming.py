"""What a resume takes from its checkpoint: the done items it skips, and those it runs again.

An item recorded done is skipped with its recorded outputs, and its stages'
recorded partial states count towards the merged state. Both are pickled
values that this user's curator wrote (the signature proves it), but a value
may still not unpickle here: its class was renamed or removed since the run,
or its own ``__reduce__`` pickles but refuses to load. Such an item is not
skipped: it runs again, its batch's partials are left out with it (so that
each item counts exactly once), and the resume says so. Nothing else is lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from curator.checkpoint.skipping import Skippable
from curator.checkpoint.store import CheckpointStore
from curator.model.state import StageStates

log = logging.getLogger("curator")

SHOWN = 5
"""Indices a warning names before it says how many more."""


@dataclass
class Resumed:
    """The recorded items a resume skips (:attr:`skippable`) and the done ones it runs again."""

    skippable: Skippable
    rerun: set[int] = field(default_factory=set)
    """Done items that run again: their record does not load, or their partials are not whole."""


def load_recorded(store: CheckpointStore, states: StageStates | None) -> Resumed:
    """Read what a resume skips from ``store``; give the stages' partials to ``states``.

    Warns (on the ``curator`` logger) about recorded items that do not load here.
    """
    skippable = store.latest()
    unloadable = set(skippable.unloadable)
    cause: BaseException | None = skippable.cause.cause if skippable.cause else None
    resumed = Resumed(skippable, set(unloadable))
    if states is not None:
        partials, incomplete = store.stored_states(skippable.latest)  # not scanned twice
        resumed.rerun |= incomplete
        for marks, items in partials:
            if unloadable.intersection(items):  # they run again: so do their partials
                resumed.rerun.update(items)
                continue
            problem = states.add_stored(marks)
            if problem is not None:
                resumed.rerun.update(items)
                unloadable.update(items)
                cause = cause or problem
    if unloadable:
        log.warning("%s", unloadable_message(sorted(unloadable), cause))
    return resumed


def unloadable_message(indices: list[int], cause: BaseException | None) -> str:
    """The warning for done items whose recorded outputs or partial states do not load."""
    named = ", ".join(map(str, indices[:SHOWN]))
    if len(indices) > SHOWN:
        named += f" and {len(indices) - SHOWN} more"
    why = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
    return (
        f"the recorded results of {len(indices)} done item(s) do not load here{why}, "
        f"so they run again: {named}. A class they use changed since the run, or "
        "a value pickles but refuses to unpickle"
    )
