"""The kit's checks of per-worker ``setup(worker)`` / ``teardown()`` of stages.

A mixin of :class:`curator.testing.BackendConformance`, like
:class:`~curator.testing.grouping.GroupChecks`.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from curator.testing.mixin import KitMixin
from curator.testing.probes import executions, hook_calls


class LifecycleChecks(KitMixin):
    """Each worker sets its stages up once before its first item and tears them down after."""

    def test_each_worker_sets_up_before_its_first_item_and_tears_down_after_its_last(
        self,
    ) -> None:
        """``setup(worker)`` once per worker before its items, ``teardown()`` once after."""
        self.need("worker_lifecycle")
        result = self.run(12, lifecycle=True, sleep=0.01)
        assert result.ok, [o for o in result.outcomes if not o.ok][:3]
        runs = executions(self.folder)
        setups = _by_place(hook_calls(self.folder, "setup"))
        teardowns = _by_place(hook_calls(self.folder, "teardown"))
        for place in {r.where for r in runs}:
            mine = [r for r in runs if r.where == place]
            assert len(setups[place]) == 1, (
                f"the worker at {place} ran {len(mine)} items after {len(setups[place])} "
                "setup(worker) calls; a backend calls work.setup(info) once per worker, "
                "before its first item"
            )
            assert setups[place][0].at <= min(r.started for r in mine)
            assert len(teardowns[place]) == 1, (
                f"the worker at {place} ran {len(mine)} items; teardown() was called "
                f"{len(teardowns[place])} times instead of once, after its last item "
                "(work.teardown())"
            )
            assert teardowns[place][0].at >= max(r.finished for r in mine)
        for calls in setups.values():
            for call in calls:
                assert call.jobs == result.run.jobs
                assert 0 <= call.slot < call.jobs, f"slot {call.slot} of {call.jobs} workers"
        assert set(teardowns) <= set(setups)  # no teardown without its setup

    def test_a_worker_that_replaces_a_crashed_one_sets_up_again(self) -> None:
        """The replacement's copy is set up before its first item too."""
        self.need("worker_lifecycle")
        self.need("isolates_crashes")
        result = self.run(12, lifecycle=True, crash=frozenset({3}))
        assert [o.index for o in result.outcomes if not o.ok] == [3]
        setups = _by_place(hook_calls(self.folder, "setup"))
        for run in executions(self.folder):
            assert setups[run.where], f"item {run.index} ran at {run.where} with no setup"
            assert setups[run.where][0].at <= run.started


def _by_place(calls: list[Any]) -> defaultdict[str, list[Any]]:
    found: defaultdict[str, list[Any]] = defaultdict(list)
    for call in calls:
        found[call.where].append(call)
    return found
