"""Whether a backend can run what a run asks of it, checked before anything starts.

Each capability a run needs (parallel jobs, stopping a running item, bounding
the stages' setup and teardown, keeping a group on one worker, calling the
stages' worker hooks) is checked against the backend's declared
:class:`~curator.backends.backend.Capabilities`; a mismatch is the user's mistake, said
with the backends that can.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from curator.backends.backend import Capabilities
from curator.model.errors import UsageError
from curator.model.pipeline import Pipeline
from curator.model.plan import StagePlan
from curator.model.selection import resolve_jobs
from curator.plugin_host.registry import Registry
from curator.running.groups import KeepTogether, keep_together
from curator.running.policy import Policy


def fit_backend(
    registry: Registry,
    name: str,
    caps: Capabilities,
    jobs: int | None,
    options: Mapping[str, Any] | None,
    policy: Policy,
    runnable: Pipeline[Any],
    selected: Sequence[int],
    plan: StagePlan,
) -> tuple[int, bool, KeepTogether | None]:
    """The run's job count, whether it runs in this process, and its keep-together groups.

    Raises
    ------
    UsageError
        When backend ``name`` cannot do what the run asks (naming those that can).
    """
    n_jobs = resolve_jobs(jobs if jobs is not None else -1 if caps.parallel else 1)
    if n_jobs > 1 and not caps.parallel:
        raise UsageError(
            f"backend {name!r} runs one item at a time, so jobs={jobs} needs a parallel "
            f"backend: {', '.join(_able(registry, 'parallel'))}"
        )
    # A parallel backend asked for one job runs in this process (no start-up, stateful
    # stages keep their state); a backend that runs one item at a time always executes,
    # and so does a parallel one left to pick its jobs (even on a one-CPU machine), and
    # one whose items run elsewhere by nature (a batch system's one job is still a job).
    in_process = n_jobs == 1 and caps.parallel and jobs is not None and not caps.runs_elsewhere
    if in_process and options:
        # The backend never runs: its options would be dropped without a word.
        raise UsageError(
            f"backend {name!r} with jobs=1 runs items in this process, without the backend, "
            f"so its option(s) {', '.join(sorted(options))} would not apply; give it 2 or "
            "more jobs (or leave jobs out: all CPUs)"
        )
    _check_limits(registry, name, caps, policy, in_process)
    together = keep_together(runnable, selected) if plan.groups else None
    if together is not None and not in_process and not caps.keeps_groups:
        raise UsageError(
            f"the pipeline keeps indices together (its partition_indices), and backend "
            f"{name!r} cannot keep a group on one worker; use a backend that can: "
            f"{', '.join(_able(registry, 'keeps_groups')) or '(none)'}"
        )
    if plan.hooks and not in_process and not caps.worker_lifecycle:
        raise UsageError(
            f"a stage of the pipeline defines setup(worker)/teardown(), and backend {name!r} "
            f"does not call them; use a backend that does: "
            f"{', '.join(_able(registry, 'worker_lifecycle')) or '(none)'}"
        )
    return n_jobs, in_process, together


def _check_limits(
    registry: Registry, name: str, caps: Capabilities, policy: Policy, in_process: bool
) -> None:
    """Refuse an item timeout or a hook limit the run cannot enforce."""
    if policy.timeout is not None and (in_process or not caps.timeouts):
        if caps.timeouts:
            # With jobs=1 items run in this process, where nothing can stop them.
            raise UsageError(
                f"backend {name!r} with jobs=1 runs items in this process, where nothing can "
                "stop a running one, so timeout= cannot be enforced; give it 2 or more jobs "
                "(or leave jobs out: all CPUs)"
            )
        raise UsageError(
            f"backend {name!r} cannot stop a running item, so timeout= cannot be enforced; "
            f"use a backend that can: {', '.join(_able(registry, 'timeouts')) or '(none)'}"
        )
    if policy.limits_hooks and not in_process and not caps.lifecycle_timeouts:
        raise UsageError(
            f"backend {name!r} cannot bound the stages' setup(worker)/teardown(), so "
            "setup_timeout=/teardown_timeout= cannot be enforced; use a backend that can: "
            f"{', '.join(_able(registry, 'lifecycle_timeouts')) or '(none)'}"
        )


def _able(registry: Registry, capability: str) -> list[str]:
    return sorted(
        name
        for name, entry in registry.backends.items()
        if entry.cls is not None and getattr(entry.cls.capabilities, capability)
    )
