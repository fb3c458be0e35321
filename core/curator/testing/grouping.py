"""The kit's checks of keep-together groups (``Capabilities.keeps_groups``).

A mixin of :class:`curator.testing.BackendConformance`: it uses the kit's
``run``, ``need`` and ``folder``, so every backend's kit class runs it.
"""

from __future__ import annotations

import itertools

from curator.testing.mixin import KitMixin
from curator.testing.probes import Execution, executions


def interleaved_groups(count: int, groups: int) -> list[list[int]]:
    """``groups`` groups of ``range(count)`` by remainder, every other one in reverse order.

    Members of a group are far apart in the request and some run backwards,
    so a backend that dispatches indices in request order splits them.
    """
    made = [[i for i in range(count) if i % groups == g] for g in range(groups)]
    return [group[::-1] if number % 2 else group for number, group in enumerate(made)]


class GroupChecks(KitMixin):
    """Keep-together groups run whole: on one worker, in their order, one item at a time."""

    def test_keep_together_groups_run_whole_in_order_one_item_at_a_time(self) -> None:
        """Interleaved groups, some backwards: each on one worker, in order, never overlapping."""
        self.need("keeps_groups")
        groups = interleaved_groups(24, 6)
        result = self.run(24, groups=groups, sleep=0.01)
        assert result.ok, [o for o in result.outcomes if not o.ok][:3]
        _assert_kept_together(groups, executions(self.folder))

    def test_failed_members_of_a_group_are_retried_together(self) -> None:
        """A retry round keeps the failed members of a group together too."""
        self.need("keeps_groups")
        groups = interleaved_groups(16, 4)
        flaky = frozenset({groups[0][1], groups[0][2], groups[1][0]})
        result = self.run(16, groups=groups, flaky=flaky, retries=1)
        assert result.ok, [o for o in result.outcomes if not o.ok][:3]
        assert sorted(o.index for o in result.retried) == sorted(flaky)
        retried = [e for e in executions(self.folder) if e.index in flaky]
        assert len(retried) == len(flaky)  # a flaky item records only its successful run
        members = [[i for i in group if i in flaky] for group in groups]
        _assert_kept_together([m for m in members if m], retried)


def _assert_kept_together(groups: list[list[int]], runs: list[Execution]) -> None:
    by_index = {run.index: run for run in runs}
    for group in groups:
        ran = [by_index[i] for i in group if i in by_index]
        assert len(ran) == len(group), f"group {group}: only {[r.index for r in ran]} ran"
        places = {run.where for run in ran}
        assert len(places) == 1, (
            f"group {group} was split: its items ran on {len(places)} workers ({sorted(places)}); "
            "a backend that declares keeps_groups runs each unit of "
            "curator.backends.dispatch.Grouped on one worker"
        )
        for before, after in itertools.pairwise(ran):
            assert before.finished <= after.started, (
                f"group {group}: item {after.index} started before item {before.index} ended; "
                "a group's items run in its order, one at a time"
            )
