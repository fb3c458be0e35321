"""The stage plan: what a run needs to know about its pipeline's stages, worked out once.

Before a run starts, the core looks at every stage once and writes down what
the rest of the run asks of them: names for the metrics, which stages
accumulate state that merges back (:mod:`curator.model.state`), which write
shard files (:mod:`curator.model.shards`), whether one defines the per-worker
``setup``/``teardown`` hooks, whether the source or the sink declares
keep-together groups, how wide a metrics row is. ``plan_run`` makes it, the
run loop keeps it, and :class:`curator.Work` carries it to the workers, where
a worker no longer scans the stages itself: every part of a run reads the
same answer.
"""

from __future__ import annotations

from typing import Any

from curator.model.measures import FIELDS, stage_names
from curator.model.pipeline import Pipeline
from curator.model.record import FrozenRecord
from curator.model.shards import sharding_stages
from curator.model.state import accumulating_stages


def defines_hooks(stage: object) -> bool:
    """Whether ``stage`` defines the per-worker ``setup`` or ``teardown`` hook."""
    return callable(getattr(stage, "setup", None)) or callable(getattr(stage, "teardown", None))


def declares_groups(pipeline: Pipeline[Any]) -> bool:
    """Whether the source or the sink has ``partition_indices`` (keep-together groups)."""
    return any(
        callable(getattr(stage, "partition_indices", None))
        for stage in (pipeline.source, pipeline.sink)
    )


class StagePlan(FrozenRecord):
    """What one run knows about its pipeline's stages; made by :meth:`of`.

    Attributes
    ----------
    stages
        Source, filters and sink, in order.
    names
        A unique name per stage, in that order (see :func:`curator.model.measures.stage_names`).
    accumulating
        The filters and sink whose state merges back, in order.
    sharding
        The filters and sink that write a shard file per item, in order.
    hooks
        Whether a stage defines ``setup(worker)`` or ``teardown()``.
    groups
        Whether the source or the sink has ``partition_indices`` (keep-together groups).
    """

    _fields = ("stages", "names", "accumulating", "sharding", "hooks", "groups")
    __slots__ = _fields
    stages: tuple[Any, ...]
    names: tuple[str, ...]
    accumulating: tuple[Any, ...]
    sharding: tuple[Any, ...]
    hooks: bool
    groups: bool

    def __init__(
        self,
        stages: tuple[Any, ...],
        names: tuple[str, ...],
        accumulating: tuple[Any, ...],
        sharding: tuple[Any, ...],
        hooks: bool,
        groups: bool,
    ) -> None:
        self._set(stages, names, accumulating, sharding, hooks, groups)

    @classmethod
    def of(cls, pipeline: Pipeline[Any]) -> StagePlan:
        """The plan of ``pipeline``, which has a sink."""
        stages = (pipeline.source, *pipeline.filters, pipeline.sink)
        return cls(
            stages=stages,
            names=stage_names(pipeline),
            accumulating=accumulating_stages(pipeline),
            sharding=sharding_stages(pipeline),
            hooks=any(defines_hooks(stage) for stage in stages),
            groups=declares_groups(pipeline),
        )

    @property
    def metric_width(self) -> int:
        """How many floats a metrics row of this pipeline's items holds."""
        return len(self.stages) + len(FIELDS)
