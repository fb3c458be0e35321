"""Resolving ``jobs`` and ``indices`` into concrete values, with clear errors."""

from __future__ import annotations

import operator
import os
import re
from collections.abc import Iterable, Sequence

from curator.model.errors import UsageError

MAX_JOBS = 65536
"""The most workers a run may ask for."""

_INTEGER = re.compile(r"-?[0-9]+")
_DASHED_RANGE = re.compile(r"([0-9]+)(?:-|\.\.)([0-9]+)")


def cpu_count() -> int:
    """CPUs this process may use (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def resolve_jobs(jobs: object) -> int:
    """Turn a ``jobs`` value into a worker count, as joblib does.

    ``n >= 1`` is taken as is; ``-1`` means all CPUs, ``-2`` all but one, and so
    on, never less than one.

    Raises
    ------
    UsageError
        For ``0``, a non-integer (including ``True``), a negative value that
        leaves no CPU (``-5`` on a 2-CPU machine), or more than :data:`MAX_JOBS`.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int):
        raise UsageError(f"jobs must be an integer (1, 4, -1 for all CPUs), got {jobs!r}")
    if jobs == 0:
        raise UsageError(
            "jobs must not be 0: use 1 to run in-process, N for N workers, -1 for all CPUs"
        )
    if jobs > MAX_JOBS:
        raise UsageError(f"jobs={jobs} is more workers than curator starts (at most {MAX_JOBS})")
    if jobs > 0:
        return jobs
    cpus = cpu_count()
    resolved = cpus + 1 + jobs
    if resolved < 1:
        raise UsageError(
            f"jobs={jobs} counts back from this machine's {cpus} CPUs and leaves no worker "
            "(-1: all of them); give a number of workers instead, say jobs=8 (on a cluster, "
            "how many of its jobs run at once)"
        )
    return resolved


def resolve_indices(indices: Iterable[object] | None, size: int) -> Sequence[int]:
    """Validate the requested indices against a pipeline of ``size`` items.

    ``None`` selects every index (as a ``range``, which costs no memory).
    Otherwise the result is a list in the given order.

    Raises
    ------
    UsageError
        Naming every non-integer, negative, out-of-range or duplicate index.
    """
    if indices is None:
        return range(size)
    if isinstance(indices, (str, bytes)):
        raise UsageError(f"indices must be a sequence of integers, got a string {indices!r}")
    try:
        given = list(indices)
    except TypeError:
        raise UsageError(f"indices must be a sequence of integers, got {indices!r}") from None
    resolved: list[int] = []
    not_int: list[object] = []
    negative: list[int] = []
    too_big: list[int] = []
    duplicates: list[int] = []
    seen: set[int] = set()
    for value in given:
        if isinstance(value, bool):
            not_int.append(value)
            continue
        try:
            index = operator.index(value)  # type: ignore[arg-type]
        except TypeError:
            not_int.append(value)
            continue
        if index < 0:
            negative.append(index)
        elif index >= size:
            too_big.append(index)
        elif index in seen:
            duplicates.append(index)
        else:
            seen.add(index)
            resolved.append(index)
    problems = []
    if not_int:
        problems.append(f"not integers: {_show(not_int)}")
    if negative:
        problems.append(f"negative: {_show(negative)}")
    if too_big:
        problems.append(
            f"out of range (the pipeline has {size} items, 0..{size - 1}): {_show(too_big)}"
        )
    if duplicates:
        problems.append(f"duplicated: {_show(sorted(set(duplicates)))}")
    if problems:
        raise UsageError("invalid indices: " + "; ".join(problems))
    return resolved


def _show(values: Sequence[object], limit: int = 10) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f", ... ({len(values)} in all)" if len(values) > limit else "")


def parse_indices(spec: str, size: int) -> Sequence[int]:
    """Parse a command-line index selection such as ``0:100``, ``3,5,9`` or ``0:100:2,200``.

    Parts are separated by commas; each is an integer or a ``start:stop[:step]``
    slice with Python's meaning (``stop`` excluded; ``start`` and ``stop`` may
    be left out, so ``:10`` and ``90:`` work). The result is validated with
    :func:`resolve_indices`, so overlapping parts are reported as duplicates.

    Raises
    ------
    UsageError
        For a malformed part, naming it.
    """
    selected: list[int] = []
    for raw in spec.split(","):
        part = raw.strip()
        if not part:
            raise UsageError(f"invalid index selection {spec!r}: empty part")
        if ":" not in part:
            index = _parse_int(part, spec)
            if index < 0:
                raise UsageError(_negative(spec, part))
            selected.append(index)
            continue
        pieces = part.split(":")
        if len(pieces) > 3:
            raise UsageError(f"invalid index selection {spec!r}: {part!r} has too many ':'")
        start = _parse_int(pieces[0], spec) if pieces[0] else 0
        stop = _parse_int(pieces[1], spec) if pieces[1] else size
        step = _parse_int(pieces[2], spec) if len(pieces) == 3 and pieces[2] else 1
        if start < 0 or stop < 0:
            raise UsageError(_negative(spec, part))
        if step <= 0:
            raise UsageError(f"invalid index selection {spec!r}: step must be positive in {part!r}")
        if stop > size:
            raise UsageError(
                f"invalid index selection {spec!r}: {part!r} goes past the last index "
                f"({size - 1}; the pipeline has {size} items)"
            )
        span = range(start, stop, step)
        if not span:
            raise UsageError(f"invalid index selection {spec!r}: {part!r} selects no index")
        selected.extend(span)
    return resolve_indices(selected, size)


def _negative(spec: str, part: str) -> str:
    return (
        f"invalid index selection {spec!r}: {part!r} is negative; indices count from 0 "
        "(there is no counting from the end)"
    )


def format_indices(indices: Sequence[int]) -> str:
    """The shortest ``parse_indices`` spec for ``indices`` in their order (``0:4,7,9:12``)."""
    parts: list[str] = []
    position = 0
    while position < len(indices):
        start = end = indices[position]
        while position + 1 < len(indices) and indices[position + 1] == end + 1:
            position += 1
            end += 1
        parts.append(str(start) if end == start else f"{start}:{end + 1}")
        position += 1
    return ",".join(parts)


def _parse_int(text: str, spec: str) -> int:
    # int() also takes "1_0", " 7" and non-ASCII digits; a selection takes plain digits only.
    if not _INTEGER.fullmatch(text):
        hint = ""
        dashed = _DASHED_RANGE.fullmatch(text)
        if dashed:  # "0-5", "0..5": the first and last index, as other tools write ranges
            first, last = int(dashed[1]), int(dashed[2])
            meant = f": {first}:{last + 1}" if first <= last else ""
            hint = f" (a range is START:STOP, STOP not included{meant})"
        raise UsageError(f"invalid index selection {spec!r}: {text!r} is not an integer{hint}")
    return int(text)
