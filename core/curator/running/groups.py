"""Keep-together groups: ``partition_indices`` of the source and the sink, checked and combined.

A Source or a Sink may declare ``partition_indices(indices) -> list[list[int]]
| None``, as in physicsnemo-curator (same name and meaning, so its stages port
unchanged): groups of indices that must run on one worker, in their order,
never two at once (one LMDB environment per process, one writer per Zarr
chunk). When both declare groups they must agree: every source group lies
within one sink group and every sink group within one source group, else the
run is refused before anything starts, naming both groups. Indices in no
group are free.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from curator.backends.dispatch import Grouped
from curator.model.errors import UsageError
from curator.model.pipeline import Pipeline
from curator.model.plan import declares_groups


class KeepTogether:
    """The groups of a run, and each round's dispatch plan.

    Parameters
    ----------
    groups
        Disjoint groups of requested indices, each in the order it runs.
    """

    def __init__(self, groups: list[list[int]]) -> None:
        self.groups = groups
        self.group_of = {index: number for number, group in enumerate(groups) for index in group}

    def plan(self, indices: Sequence[int]) -> Grouped:
        """``indices`` (a round's) as units: each group's members among them, free ones alone.

        Units follow the request: a group goes out where its first member is
        requested, with its members in the group's order.
        """
        wanted = set(indices)
        units: list[list[int]] = []
        emitted: set[int] = set()
        group_of, groups = self.group_of, self.groups
        for index in indices:
            number = group_of.get(index)
            if number is None:
                units.append([index])
            elif number not in emitted:
                emitted.add(number)
                units.append([member for member in groups[number] if member in wanted])
        return Grouped(units)


def keep_together(pipeline: Pipeline[Any], indices: Sequence[int]) -> KeepTogether | None:
    """The keep-together groups ``pipeline`` declares for ``indices``, or ``None``.

    Raises
    ------
    UsageError
        A stage's ``partition_indices`` raised, returned something that is
        not a list of lists of requested indices, put an index in two groups,
        or the source's and the sink's groups disagree.
    """
    if not declares_groups(pipeline):
        return None  # without a list of every index: a million items cost 40 MB here
    requested = list(indices)
    source_groups = _declared(pipeline.source, "source", requested)
    sink_groups = _declared(pipeline.sink, "sink", requested) if pipeline.sink else None
    if source_groups is None and sink_groups is None:
        return None
    if source_groups is None or sink_groups is None:
        groups = source_groups if source_groups is not None else sink_groups
        assert groups is not None
        return KeepTogether([g for g in groups if g])
    return KeepTogether(_agreed(source_groups, sink_groups))


def _declared(stage: object, role: str, requested: list[int]) -> list[list[int]] | None:
    partition = getattr(stage, "partition_indices", None)
    if partition is None or not callable(partition):
        return None
    name = type(stage).__name__
    try:
        groups = partition(list(requested))
    except Exception as exc:
        raise UsageError(
            f"the {role} {name}'s partition_indices() raised {type(exc).__name__}: {exc}"
        ) from exc
    if groups is None:
        return None
    if not isinstance(groups, list | tuple) or not all(
        isinstance(g, list | tuple) and all(isinstance(i, int) for i in g) for g in groups
    ):
        raise UsageError(
            f"the {role} {name}'s partition_indices() must return a list of lists of "
            f"indices or None, not {_shorten(groups)}"
        )
    wanted = set(requested)
    seen: dict[int, int] = {}
    for number, group in enumerate(groups):
        for index in group:
            if index not in wanted:
                raise UsageError(
                    f"the {role} {name}'s partition_indices() put index {index} in group "
                    f"{_shorten(group)}, but that index is not part of this run"
                )
            if index in seen:
                raise UsageError(
                    f"the {role} {name}'s partition_indices() put index {index} in two groups: "
                    f"{_shorten(groups[seen[index]])} and {_shorten(group)}"
                )
            seen[index] = number
    return [list(g) for g in groups]


def _agreed(source_groups: list[list[int]], sink_groups: list[list[int]]) -> list[list[int]]:
    """Combine the source's and the sink's groups (both keep their members together)."""
    source_of = {i: n for n, group in enumerate(source_groups) for i in group}
    sink_of = {i: n for n, group in enumerate(sink_groups) for i in group}
    for mine, theirs, role, other in (
        (source_groups, sink_of, "source", "sink"),
        (sink_groups, source_of, "sink", "source"),
    ):
        for group in mine:
            homes = {theirs.get(i, -1) for i in group}
            if len(homes) > 1:
                partners = sorted(homes - {-1})
                other_groups = " and ".join(
                    _shorten((sink_groups if other == "sink" else source_groups)[h])
                    for h in partners[:2]
                )
                raise UsageError(
                    f"the {role} keeps {_shorten(group)} together, but the {other}'s groups "
                    f"split it ({other_groups}"
                    + (", and indices in no group" if -1 in homes else "")
                    + "): make the sink's groups follow the source's (say, chunk boundaries "
                    "that match file boundaries)"
                )
    # Past the check, a group of one side either equals a group of the other or
    # meets none of them.
    return [g for g in source_groups if g] + [g for g in sink_groups if g and g[0] not in source_of]


def _shorten(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 4] + " ...]"
