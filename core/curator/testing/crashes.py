"""The kit's checks of a worker that dies under an item.

A mixin of :class:`curator.testing.BackendConformance`. The probe's crashing
item ends its process with ``os._exit`` (:data:`KitLimits.crash_exit_code`).
A backend that declares ``isolates_crashes`` loses only that item, reported
``crashed``; one that does not (a pool that breaks as a whole when a worker
dies) may lose the items it held beside it, but never the run: each is
reported ``crashed``, and the rest run.
"""

from __future__ import annotations

import pytest

from curator.model.outcome import Status
from curator.testing.mixin import KitMixin


class CrashChecks(KitMixin):
    """A dead worker costs items, reported ``crashed``, never the run."""

    def test_a_worker_crash_becomes_a_crashed_outcome(self) -> None:
        """Item 5 kills its worker: it alone reads ``crashed``, with its worker's exit code."""
        self.need("isolates_crashes")
        result = self.run(12, crash=frozenset({5}))
        crashed = result.outcomes[5]
        said = f": {crashed.error.message}" if crashed.error is not None else ""
        assert crashed.status is Status.CRASHED, (
            f"item 5 killed its worker, but its outcome reads {crashed.status.value}{said}"
        )
        assert crashed.error is not None
        expected = self.limits.crash_exit_code
        exit_code = crashed.error.exit_code
        if self.caps.crash_exit_codes:
            assert exit_code == expected, (
                f"the worker of item 5 exited with code {expected}, but its outcome says "
                f"{exit_code} (a backend that cannot tell declares crash_exit_codes=False)"
            )
        else:
            assert exit_code in (expected, None), (
                f"the worker of item 5 exited with code {expected}, but its outcome says "
                f"{exit_code}: a backend that cannot tell gives None, never a wrong code"
            )
        assert [o.index for o in result.outcomes if o.status is not Status.OK] == [5]

    def test_crashes_among_fast_items_cost_only_the_crashed_items(self) -> None:
        """Among 6,000 quick items (chunks, batches), each crash costs only its own item."""
        self.need("isolates_crashes")
        crash = frozenset(range(499, 6000, 500))
        result = self.run(6000, crash=crash)
        crashed = [o.index for o in result.outcomes if o.status is Status.CRASHED]
        assert crashed == sorted(crash), f"expected exactly {sorted(crash)} to crash: {crashed}"
        assert result.count(Status.OK) == 6000 - len(crash), result.counts()

    def test_a_worker_crash_costs_items_never_the_run(self) -> None:
        """Without isolation, the items a dead worker's pool held may be lost too, all as crashed.

        Ending the run with the pool's own error (loky's ``TerminatedWorkerError``)
        instead would be an internal error, and every item not yet run lost with it.
        """
        if self.caps.isolates_crashes or not self.caps.needs_picklable_work:
            pytest.skip(
                "isolates_crashes is checked above; a backend whose items run in the run's "
                "own process cannot survive a crash"
            )
        result = self.run(40, crash=frozenset({5}), sleep=0.01)
        assert [o.index for o in result.outcomes] == list(range(40))
        crashed = result.outcomes[5]
        assert crashed.status is Status.CRASHED, f"item 5 killed its worker: {crashed}"
        assert crashed.error is not None
        assert crashed.error.exit_code in (self.limits.crash_exit_code, None), (
            f"item 5's worker exited with code {self.limits.crash_exit_code}, but its outcome "
            f"says {crashed.error.exit_code}: a backend that cannot tell gives None"
        )
        others = {o.status for o in result.outcomes} - {Status.OK, Status.CRASHED}
        assert not others, f"a crash may cost items (crashed), nothing else: {others}"
