"""``curator bench``: a user's own pipeline measured on each installed backend.

A sample of indices, spread evenly over the pipeline, runs on every usable
backend, at a few job counts (and chunk sizes, where the backend has a
``chunksize`` option), each run on a fresh copy of the pipeline, without a
checkpoint or a reporter. Each configuration gives its start-up time, items
per second once started, the median item's time, the per-item overhead (the
time per item per worker beyond the item itself), the workers' peak memory and
the speedup over ``sequential``; the fastest estimated time for the whole run
is the recommendation.

The sampled items' files never land where the real run writes: each stage
that writes (the sink, any stage with ``finish`` or ``flush``, and filters that
say where they write) is pointed at a scratch folder first, through its
``use_scratch(folder)`` method or its ``output_path`` attribute (see
:mod:`curator.running.bench_scratch`), and a batch backend's jobs keep their
folder there too.
"""

from __future__ import annotations

import copy
import dataclasses
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from curator.model.errors import BackendContractError, UsageError
from curator.model.outcome import Status
from curator.model.pipeline import Pipeline, check_runnable
from curator.plugin_host.registry import Registry
from curator.running.bench_configs import Config, checked_options, configurations, sample_indices
from curator.running.bench_scratch import jobs_into_scratch, scratch_copy
from curator.running.runner import run


@dataclass(frozen=True)
class Measured:
    """What one configuration did with the sample.

    Attributes
    ----------
    config
        How it ran.
    items, failed
        Items in the sample, and how many of them failed.
    wall
        Seconds from the call to the result (with :attr:`once`).
    startup
        Seconds until the first item started (workers, shipping the pipeline),
        in a process that had not run this backend before (see :attr:`once`).
    per_second
        Items per second from the first item's start to the last one's end.
    item
        The median item's own seconds, where it ran.
    overhead
        Seconds per item per worker beyond the item itself (dispatch, results).
    worker_rss
        The workers' peak resident memory in bytes (``None``: not measured).
    first_error
        The first failure's one-line message, if any item failed.
    once
        What a process's first run of this backend pays once more than the
        next ones (a fork server's start, an engine's imports), in seconds:
        part of :attr:`startup`, measured before the backend's first
        configuration, so that every configuration of a backend carries it
        alike and a real ``curator run`` pays what the table says.
    wind_down
        Seconds from the last item's end to the run's end (the stages'
        ``finish``, the workers stopping): paid once per run, as
        :attr:`startup` is, not per item.
    """

    config: Config
    items: int
    failed: int
    wall: float
    startup: float
    per_second: float
    item: float
    overhead: float
    worker_rss: int | None
    first_error: str | None = None
    once: float = 0.0
    wind_down: float = 0.0

    def estimate(self, total: int) -> float:
        """Seconds this configuration would take for ``total`` items."""
        return self.startup + total / self.per_second + self.wind_down

    def to_json(self, baseline: float | None, total: int) -> dict[str, Any]:
        """A JSON row; ``baseline``: sequential's items per second (for the speedup)."""
        return {
            "backend": self.config.backend,
            "jobs": self.config.jobs,
            "chunksize": self.config.chunksize,
            "items": self.items,
            "failed": self.failed,
            "wall_seconds": round(self.wall, 6),
            "startup_seconds": round(self.startup, 6),
            "wind_down_seconds": round(self.wind_down, 6),
            "first_run_seconds": round(self.once, 6),
            "items_per_second": round(self.per_second, 3),
            "item_seconds": round(self.item, 6),
            "overhead_seconds": round(self.overhead, 6),
            "worker_peak_rss": self.worker_rss,
            "speedup": None if baseline is None else round(self.per_second / baseline, 3),
            "estimated_seconds": round(self.estimate(total), 3),
            "first_error": self.first_error,
        }


def measure(
    pipeline: Pipeline[Any],
    config: Config,
    indices: Sequence[int],
    registry: Registry | None = None,
    options: Mapping[str, Any] | None = None,
) -> Measured:
    """Run ``indices`` of ``pipeline`` (a copy: see :func:`scratch_copy`) as ``config`` says.

    ``options`` are backend options for every configuration, as given (the run
    converts them); ``config``'s chunk size comes on top.
    """
    options = dict(options or {})
    if config.chunksize is not None:
        options["chunksize"] = config.chunksize
    began, clock = time.time(), time.perf_counter()
    result = run(
        copy.deepcopy(pipeline),
        backend=config.backend,
        jobs=config.jobs,
        indices=indices,
        options=options,
        on_error="continue",
        checkpoint=None,
        reporter=None,
        registry=registry,
    )
    wall = time.perf_counter() - clock
    outcomes = result.outcomes
    failed = [o for o in outcomes if o.status is not Status.OK]
    starts = [o.started for o in outcomes if o.started]
    startup = max(0.0, min(starts) - began) if starts else 0.0
    # What follows the last item (a stage's finish, the workers stopping) is paid once
    # per run, as the start-up is: spread over a sample's items, it would be scaled up
    # to the whole run's. The items' span is read from their own clocks (a batch job's
    # may run on another machine, its clock off this one's), within the run's wall time.
    ends = [o.finished for o in outcomes if o.started]
    span = max(ends) - min(starts) if ends else 0.0
    busy = min(span, wall) if span > 0 else max(wall - startup, 1e-9)
    wind_down = max(0.0, wall - startup - busy)
    spent = [o.finished - o.started for o in outcomes if o.status is Status.OK]
    item = statistics.median(spent) if spent else 0.0
    rss = [o.metrics.rss_peak for o in outcomes if o.metrics is not None]
    return Measured(
        config=config,
        items=len(outcomes),
        failed=len(failed),
        wall=wall,
        startup=startup,
        per_second=len(outcomes) / busy,
        item=item,
        overhead=max(0.0, busy * config.jobs / max(len(outcomes), 1) - item),
        worker_rss=int(max(rss)) if rss else None,
        first_error=_first_error(failed),
        wind_down=wind_down,
    )


def _first_error(failed: Sequence[Any]) -> str | None:
    if not failed:
        return None
    error = failed[0].error
    return f"item {failed[0].index}: {error.type}: {error.message}" if error else "failed"


def best(rows: Sequence[Measured], total: int) -> Measured | None:
    """The configuration with the shortest estimated time for ``total`` items (none failed)."""
    clean = [row for row in rows if not row.failed]
    if not clean:
        return None
    return min(clean, key=lambda row: (row.estimate(total), row.config.jobs))


def bench(
    pipeline: Pipeline[Any],
    folder: Path,
    *,
    sample: int = 32,
    backends: Sequence[str] | None = None,
    jobs: Sequence[int] | None = None,
    allow_writes: bool = False,
    options: Mapping[str, Any] | None = None,
    backend_options: Mapping[str, Mapping[str, Any]] | None = None,
    registry: Registry,
    progress: Callable[[Config], None] | None = None,
    skipped: Callable[[str, str], None] | None = None,
) -> list[Measured]:
    """Measure every configuration on ``sample`` indices of ``pipeline``, writing into ``folder``.

    ``options`` are backend options (``-o KEY=VALUE``) for the backends named
    in ``backends``: each of them must take every one. ``backend_options``
    (``-o NAME:KEY=VALUE``) are one backend's own, by its name, on top. A
    chunk size among a backend's options is the only one measured for it.
    A batch backend's jobs keep their folder in ``folder`` too (``jobs``),
    unless its ``job_folder`` is given: ``folder`` must then be one its jobs
    reach.

    A configuration of more workers than half the sample is not measured
    (idle workers would count against it), nor one job of a parallel
    backend, nor the configurations of a
    backend that refused the pipeline (one it cannot ship, a cluster out of
    reach): ``skipped`` hears of each, with a backend and the reason, and
    the rest are measured.

    Raises
    ------
    UsageError
        For a bad sample size, an unknown backend or job count, options
        without named backends or that one of them refuses, a pipeline
        that cannot be benchmarked safely (see :func:`scratch_copy`), or
        when no configuration could be measured (the reasons named).
    """
    if sample < 1:
        raise UsageError(f"the sample must hold at least 1 item, got {sample}")
    if jobs and min(jobs) < 1:
        raise UsageError(f"job counts must be at least 1, got {min(jobs)}")
    size = len(check_runnable(pipeline))
    if size == 0:
        raise UsageError("the pipeline has no items to measure")
    indices = sample_indices(size, sample)
    # What was asked for is checked first: an unknown backend is the error to fix first.
    reasons: dict[str, None] = {}  # what was not measured, once each, in order: the error

    def leave_out(backend: str, why: str) -> None:
        said = f"{backend} {why}"
        if said not in reasons and skipped is not None:  # once for its chunk sizes
            skipped(backend, why)
        reasons[said] = None

    # Each backend takes every option it is given.
    by_backend = checked_options(registry, backends, options, backend_options)
    configs = configurations(registry, backends, jobs, len(indices), by_backend, leave_out)
    if not configs:
        raise UsageError("nothing to measure: " + ("; ".join(reasons) or "no usable backend"))
    scratch = scratch_copy(pipeline, folder, allow_writes)
    rows = []
    once: dict[str, float] = {}  # by backend
    refused: set[str] = set()  # backends that cannot run the pipeline
    for config in configs:
        if config.backend in refused:
            continue
        if config.jobs > 1 and len(indices) < 2 * config.jobs:
            why = (  # a larger sample helps, unless the pipeline has no more items
                f"a sample of {len(indices)} items cannot keep {config.jobs} workers busy; "
                f"give --sample {4 * config.jobs} or more"
                if len(indices) < size
                else f"the pipeline's {size} items cannot keep {config.jobs} workers busy"
            )
            leave_out(config.backend, f"-j {config.jobs}: {why}")
            continue
        if progress is not None:
            progress(config)
        own = by_backend.get(config.backend)
        elsewhere = runs_elsewhere(registry, config.backend)
        if elsewhere:
            own = jobs_into_scratch(registry.backend(config.backend).Options, own or {}, folder)
        try:
            first = None
            if config.backend not in once and not elsewhere:
                # A process's first run of a backend pays once what later runs do not:
                # one item first, so that not only the first configuration pays it. (Not
                # for batch jobs: a queue's wait is no start-up cost, and a job is dear.)
                first = measure(scratch, config, indices[:1], registry, own)
            row = measure(scratch, config, indices, registry, own)
        except UsageError as exc:  # it cannot ship this pipeline, its cluster is out of reach
            refused.add(config.backend)
            reasons[f"measuring {config.label}: {exc}"] = None
            if skipped is not None:
                skipped(config.backend, str(exc))
            continue
        except BackendContractError as exc:  # a plugin's bug, named as a run names it
            plugin = registry.installed_plugin_of(config.backend)
            if plugin is None:
                raise  # curator's own: an internal error, as in a run
            refused.add(config.backend)
            why = f"{exc}; that is a bug in {plugin.describe()}"
            reasons[f"measuring {config.label}: {why}"] = None
            if skipped is not None:
                skipped(config.backend, why)
            continue
        if first is not None:
            once[config.backend] = max(0.0, first.startup - row.startup)
        extra = once.setdefault(config.backend, 0.0)
        rows.append(
            dataclasses.replace(row, wall=row.wall + extra, startup=row.startup + extra, once=extra)
        )
    if not rows:
        raise UsageError("; ".join(reasons))
    return rows


def runs_elsewhere(registry: Registry, name: str) -> bool:
    """Whether backend ``name``'s items run as batch jobs, on other machines."""
    return registry.backend(name).capabilities.runs_elsewhere


def speedup_base(rows: Sequence[Measured]) -> float | None:
    """Sequential's items per second, the speedups' base (``None`` when it was not run)."""
    for row in rows:
        if row.config.backend == "sequential":
            return row.per_second  # a sample holds an item at least: never zero
    return None
