"""Where ``curator bench``'s sampled items write: a scratch folder, never the run's place.

Each stage that may write files (the sink, any stage with ``finish`` or
``flush``, and any filter with either of the two below) is pointed at a
folder of its own in the scratch folder, through its ``use_scratch(folder)``
method or its ``output_path`` attribute. A sink, or a stage with ``finish``
or ``flush``, that has neither cannot be redirected: :func:`scratch_copy` then
refuses, unless the caller allows the writes.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path, PurePath
from typing import Any

from curator.model.errors import UsageError
from curator.model.pipeline import Pipeline, check_runnable
from curator.model.shards import path_attribute

SCRATCH_HOOK = "use_scratch"
"""The stage method the bench calls with a scratch folder before it runs a sample."""

WRITING_HOOKS = ("finish", "flush", SCRATCH_HOOK)
"""A filter with one of these methods may write files."""


def writing_stages(pipeline: Pipeline[Any]) -> list[tuple[str, Any]]:
    """The stages that may write files: the sink, and filters that finish, flush or say where.

    A filter with a ``use_scratch`` method or an ``output_path`` may write in
    ``setup`` or ``teardown``, or as items pass: it is pointed at the scratch
    folder too. A filter with neither (nor ``finish``, ``flush``) is taken to
    write nothing; one that cannot even be asked (an attribute that raises) is
    taken to write.
    """
    found: list[tuple[str, Any]] = []
    for n, stage in enumerate(pipeline.filters, 1):
        try:
            writes = (
                any(callable(getattr(stage, hook, None)) for hook in WRITING_HOOKS)
                or _path_attribute(stage) is not None
            )
        except Exception:
            writes = True  # scratch_copy names what went wrong
        if writes:
            found.append((f"filter {n} ({type(stage).__qualname__})", stage))
    found.append((f"the sink ({type(pipeline.sink).__qualname__})", pipeline.sink))
    return found


def scratch_copy(pipeline: Pipeline[Any], folder: Path, allow_writes: bool) -> Pipeline[Any]:
    """A copy of ``pipeline`` whose writing stages write into ``folder``.

    Raises
    ------
    UsageError
        When a stage that may write can be pointed nowhere else (no
        ``use_scratch`` method, no ``output_path`` attribute) and ``allow_writes``
        is false; or when the pipeline cannot be copied.
    """
    runnable = check_runnable(pipeline)
    try:
        copied = copy.deepcopy(runnable)
    except Exception as exc:
        raise UsageError(
            f"curator bench runs a copy of the pipeline, and it cannot be copied "
            f"({type(exc).__name__}: {exc})"
        ) from None
    stuck = []
    for number, (name, stage) in enumerate(writing_stages(copied), 1):
        place = folder / f"stage-{number}"
        try:
            place.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"cannot make the scratch folder {place}: {exc.strerror or exc}"
            ) from None
        try:
            hook, attribute = getattr(stage, SCRATCH_HOOK, None), _path_attribute(stage)
        except Exception as exc:  # a property of the stage's that raises
            stuck.append(f"{name} (asking where it writes raised {type(exc).__name__})")
            continue
        if callable(hook):
            try:
                hook(place)
            except Exception as exc:  # the stage's code: named like a failing setup()
                raise UsageError(
                    f"{name}: {SCRATCH_HOOK}({str(place)!r}) raised {type(exc).__name__}: {exc}"
                ) from None
        elif attribute is not None:
            try:
                setattr(stage, attribute, _moved_path(getattr(stage, attribute), place))
            except Exception as exc:  # frozen, a read-only property, a setter that refuses
                stuck.append(f"{name} (its {attribute} cannot be set: {type(exc).__name__})")
        else:
            stuck.append(name)
    if stuck and not allow_writes:
        raise UsageError(
            f"curator bench runs sampled items through the pipeline, and {', '.join(stuck)} "
            f"may write files that curator cannot point at a scratch folder (give the stage a "
            f"{SCRATCH_HOOK}(folder) method or a settable output_path attribute); pass "
            "--allow-writes to let the sampled items write where the stage writes"
        )
    return copied


def _path_attribute(stage: object) -> str | None:
    """The name of the stage's output path attribute (``str``, ``bytes`` or a path), if any."""
    return path_attribute(stage, (str, bytes, os.PathLike))


def _moved_path(
    current: str | bytes | os.PathLike[str], folder: Path
) -> str | bytes | os.PathLike[str]:
    """``current``'s file name in ``folder``, of ``current``'s type (a ``str`` stays one).

    A folder (one that exists) is made there too: a stage writes files into it.
    """
    moved = folder / Path(os.fsdecode(current)).name
    if os.path.isdir(current):
        moved.mkdir(parents=True, exist_ok=True)
    if isinstance(current, str):
        return str(moved)
    if isinstance(current, bytes):
        return os.fsencode(moved)
    if isinstance(current, PurePath):
        return type(current)(moved)  # the stage may call its Path's methods
    return moved


JOB_FOLDER = "job_folder"
"""The option naming a batch backend's jobs' folder (``curator.backends.batch.BatchOptions``)."""


def jobs_into_scratch(options_class: type, given: dict[str, Any], folder: Path) -> dict[str, Any]:
    """``given`` with the jobs' folder of a backend that has one in ``folder``, unless named.

    A batch backend keeps its jobs' work, records and logs in a folder of its
    own (Slurm's default: ``curator-jobs`` in the working directory, kept for
    the logs). A bench's sample is no run to look back on: its jobs write into
    the scratch folder, and go with it. A ``job_folder`` the user gave is kept.
    """
    fields = getattr(options_class, "__dataclass_fields__", {})
    if JOB_FOLDER not in fields or given.get(JOB_FOLDER) is not None:
        return given
    return {**given, JOB_FOLDER: str(folder / "jobs")}
