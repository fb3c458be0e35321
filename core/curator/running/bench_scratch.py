"""Where ``curator bench``'s sampled items write: a scratch folder, never the run's place.

Each stage that may write files (the sink, any stage with ``finish`` or
``flush``, and any filter or source with either of the two below) is pointed
at a folder of its own in the scratch folder, through its ``use_scratch(folder)``
method or its ``output_path`` attribute. A sink, or a stage with ``finish``
or ``flush``, that has neither cannot be redirected: :func:`scratch_copy` then
refuses, unless the caller allows the writes.
"""

from __future__ import annotations

import copy
import dataclasses
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


def writing_stages(pipeline: Pipeline[Any]) -> list[tuple[str, Any, str]]:
    """The stages that may write files, each with its name and its scratch folder's name.

    The sink, and filters that finish, flush or say where they write: a
    filter with a ``use_scratch`` method or an ``output_path`` may write in
    ``setup`` or ``teardown``, or as items pass. A filter with neither (nor
    ``finish``, ``flush``) is taken to write nothing; one that cannot even be
    asked (an attribute that raises) is taken to write. A source is taken to
    read, unless it has a ``use_scratch`` method (it writes a cache, say: an
    ``output_path`` of a source's may well be what it reads); it goes into the
    folder ``source``, the others into ``stage-1``, ``stage-2``, ... in
    pipeline order.
    """
    found: list[tuple[str, Any, str]] = []
    source = pipeline.source
    if _says_where(source, (SCRATCH_HOOK,), by_path=False):
        found.append((f"the source ({type(source).__qualname__})", source, "source"))
    stages: list[tuple[str, Any]] = [
        (f"filter {n} ({type(stage).__qualname__})", stage)
        for n, stage in enumerate(pipeline.filters, 1)
        if _says_where(stage, WRITING_HOOKS)
    ]
    stages.append((f"the sink ({type(pipeline.sink).__qualname__})", pipeline.sink))
    found += [(name, stage, f"stage-{n}") for n, (name, stage) in enumerate(stages, 1)]
    return found


def _says_where(stage: object, hooks: tuple[str, ...], by_path: bool = True) -> bool:
    """Whether ``stage`` has one of ``hooks`` or (``by_path``) an output path.

    A stage that cannot even be asked is taken to say so.
    """
    try:
        return any(callable(getattr(stage, hook, None)) for hook in hooks) or (
            by_path and _path_attribute(stage) is not None
        )
    except Exception:
        return True  # scratch_copy names what went wrong


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
    # Every stage is asked first: a bench refused makes no folder.
    routes: list[tuple[str, Any, str, Any, str | None]] = []
    stuck = []
    for name, stage, where in writing_stages(copied):
        try:
            hook, attribute = getattr(stage, SCRATCH_HOOK, None), _path_attribute(stage)
        except Exception as exc:  # a property of the stage's that raises
            stuck.append(f"{name} (asking where it writes raised {type(exc).__name__})")
            continue
        if callable(hook):
            routes.append((name, stage, where, hook, None))
        elif attribute is not None:
            fixed = _read_only(stage, attribute)  # asked without calling a setter of the stage's
            if fixed is not None:
                stuck.append(f"{name} (its {attribute} cannot be set: {fixed})")
                continue
            routes.append((name, stage, where, None, attribute))
        else:
            stuck.append(name)
    if stuck and not allow_writes:
        raise UsageError(_refusal(stuck))
    stuck = []
    for name, stage, where, hook, attribute in routes:
        place = folder / where
        try:
            place.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"cannot make the scratch folder {place}: {exc.strerror or exc}"
            ) from None
        if hook is not None:
            try:
                hook(place)
            except Exception as exc:  # the stage's code: named like a failing setup()
                raise UsageError(
                    f"{name}: {SCRATCH_HOOK}({str(place)!r}) raised {type(exc).__name__}: {exc}"
                ) from None
        else:
            assert attribute is not None
            try:
                setattr(stage, attribute, _moved_path(getattr(stage, attribute), place))
            except Exception as exc:  # a setter that refuses, a __setattr__ that does
                stuck.append(f"{name} (its {attribute} cannot be set: {type(exc).__name__})")
    if stuck and not allow_writes:  # found only by setting it: the scratch is all it touched
        raise UsageError(_refusal(stuck))
    return copied


def _refusal(stuck: list[str]) -> str:
    return (
        f"curator bench runs sampled items through the pipeline, and {', '.join(stuck)} "
        f"may write files that curator cannot point at a scratch folder (give the stage a "
        f"{SCRATCH_HOOK}(folder) method or a settable output_path attribute); pass "
        "--allow-writes to let the sampled items write where the stage writes"
    )


def _read_only(stage: object, attribute: str) -> str | None:
    """Why ``stage.attribute`` cannot be set, told from its class (``None``: it may be).

    A property without a setter, or a frozen dataclass. The stage's own
    setter is not called: it may make the folder the real run writes to.
    """
    declared = getattr(type(stage), attribute, None)
    if isinstance(declared, property):
        return None if declared.fset is not None else "AttributeError"
    params = getattr(type(stage), "__dataclass_params__", None)
    if params is not None and getattr(params, "frozen", False):
        return "FrozenInstanceError"
    return None


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
    fields = {field.name for field in dataclasses.fields(options_class)}
    if JOB_FOLDER not in fields or given.get(JOB_FOLDER) is not None:
        return given
    return {**given, JOB_FOLDER: str(folder / "jobs")}
