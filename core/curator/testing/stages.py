"""The kit's checks of stage state that merges back (:mod:`curator.state`).

A mixin of :class:`curator.testing.BackendConformance`, like
:class:`~curator.testing.grouping.GroupChecks`. A backend needs no code of
its own for it: the partials ride on the values :class:`curator.Work` makes.
These checks hold a backend to passing those values on unchanged and to
yielding each ``ok`` outcome once.
"""

from __future__ import annotations

from curator.testing.mixin import KitMixin
from curator.testing.probes import Tally


class StateChecks(KitMixin):
    """An accumulating stage in the caller's pipeline ends holding every ``ok`` item once."""

    def test_stage_state_merges_back_counting_each_ok_item_once(self) -> None:
        """Failed items count nothing; flaky ones count once, after their retry."""
        tally = Tally()
        result = self.run(
            40, tally=tally, fail=frozenset({3, 17}), flaky=frozenset({5, 22}), retries=1
        )
        ok = sorted(o.index for o in result.outcomes if o.ok)
        assert ok == [i for i in range(40) if i not in (3, 17)]
        assert tally.seen == tuple(ok), (
            "the caller's accumulating stage must hold the merged state of exactly the ok "
            f"items; it holds {tally.seen}"
        )

    def test_stage_state_of_a_crashed_item_counts_nothing(self) -> None:
        """A worker that dies takes its item's partial with it; the others merge."""
        self.need("isolates_crashes")
        tally = Tally()
        result = self.run(16, tally=tally, crash=frozenset({6}))
        ok = sorted(o.index for o in result.outcomes if o.ok)
        assert 6 not in ok
        assert tally.seen == tuple(ok)
