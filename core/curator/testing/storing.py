"""The kit's checks that what a worker accepts, the checkpoint stores.

A mixin of :class:`curator.testing.BackendConformance`. The checkpoint pickles
values with plain :mod:`pickle` in the run's process; a worker checks each
value with the same pickler where it is made (see :mod:`curator.model.pickling`).
A value that only cloudpickle could take (an object of a class defined inside
a function) must fail its own item there, never the checkpoint's writer, so
every other outcome is recorded.
"""

from __future__ import annotations

from curator.checkpoint.catalog import read as report
from curator.model.outcome import Status
from curator.testing.mixin import KitMixin
from curator.testing.probes import Tally

COUNT = 200
LOCAL = 137


class StoringChecks(KitMixin):
    """Values the checkpoint cannot store fail their own items; the rest is recorded."""

    def test_a_result_only_cloudpickle_takes_fails_only_its_item(self) -> None:
        """An object of a class defined in a function: ``UnpicklableResult``, 199 recorded."""
        store = self.folder.parent / "local-result.sqlite"
        result = self.run(COUNT, local=frozenset({LOCAL}), checkpoint=store)
        failed = result.outcomes[LOCAL]
        assert failed.status is Status.FAILED, failed
        assert failed.error is not None
        assert failed.error.type == "UnpicklableResult", failed.error
        assert "LocalTuple" in failed.error.message
        assert "cannot be pickled" in failed.error.message
        assert result.count(Status.OK) == COUNT - 1
        recorded = report(store).counts
        assert recorded == {"ok": COUNT - 1, "failed": 1}, f"the checkpoint holds {recorded}"

    def test_a_partial_only_cloudpickle_takes_fails_only_its_item(self) -> None:
        """Slow items: each batch of outcomes carries one partial, unfolded, to the checkpoint."""
        store = self.folder.parent / "local-partial.sqlite"
        tally = Tally(local=frozenset({LOCAL}))
        result = self.run(COUNT, tally=tally, sleep=0.002, checkpoint=store)
        failed = result.outcomes[LOCAL]
        assert failed.status is Status.FAILED, failed
        assert failed.error is not None
        assert failed.error.type == "UnpicklableState", failed.error
        assert "LocalTuple" in failed.error.message
        ok = [i for i in range(COUNT) if i != LOCAL]
        assert sorted(o.index for o in result.outcomes if o.ok) == ok
        assert tally.seen == tuple(ok)
        recorded = report(store).counts
        assert recorded == {"ok": COUNT - 1, "failed": 1}, f"the checkpoint holds {recorded}"
        # The stored partials hold every ok item: a resume that skips them counts each once.
        again = Tally(local=frozenset({LOCAL}))
        resumed = self.run(COUNT, tally=again, sleep=0.002, checkpoint=store, resume=True)
        assert resumed.count(Status.SKIPPED) == COUNT - 1
        assert again.seen == tuple(ok)
