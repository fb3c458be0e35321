"""A plugin whose module-level event hooks raise: an observer that must not cost the run."""

from typing import Any

from curator import hookimpl


@hookimpl
def curator_run_start(run: Any) -> None:
    raise RuntimeError("the observer cannot start")


@hookimpl
def curator_task_finish(outcome: Any) -> None:
    raise ValueError(f"the observer chokes on item {outcome.index}")
