"""The kit's checks of stage state that merges back (:mod:`curator.model.state`).

A mixin of :class:`curator.testing.BackendConformance`, like
:class:`~curator.testing.grouping.GroupChecks`. A backend needs no code of
its own for it: the partials ride on the values :class:`curator.Work` makes.
These checks hold a backend to passing those values on unchanged and to
yielding each ``ok`` outcome once. Shard-style stages (:mod:`curator.model.shards`)
need no code either: each item's rows are its own file, merged for the items
recorded ``ok``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from curator.model.outcome import Status
from curator.testing.mixin import KitMixin
from curator.testing.probes import Tally
from curator.testing.shard_rows import ShardRows, rows


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

    def test_a_run_without_ok_items_leaves_the_stage_reset(self) -> None:
        """No partial to merge: the caller's stage still starts from empty, not from before.

        The caller's object held a stale state (and, where the caller's own
        object runs the items, the failed items' partials): both go.
        """
        tally = Tally()
        tally.merge([(999,)])  # a state the object held before the run
        result = self.run(6, tally=tally, fail=frozenset(range(6)))
        assert result.count(Status.FAILED) == 6
        assert tally.seen == (), f"the stage must be reset, it holds {tally.seen}"

    def test_resume_after_two_runs_on_one_checkpoint_counts_each_partial_once(self) -> None:
        """The first run's partials are superseded by the second's, which the resume adds."""
        store = self.folder.parent / "twice.sqlite"
        flaky = frozenset({5, 7})
        flaked = self.folder / "flaked.7"
        flaked.touch()  # the first run: item 7 passes, item 5 fails (and passes from then on)
        first = self.run(30, tally=Tally(), flaky=flaky, checkpoint=store)
        assert [o.index for o in first.outcomes if not o.ok] == [5]
        flaked.unlink()  # the second run, not resumed, redoes every item: now item 7 fails
        second = self.run(30, tally=Tally(), flaky=flaky, checkpoint=store)
        assert [o.index for o in second.outcomes if not o.ok] == [7]
        tally = Tally()
        resumed = self.run(30, tally=tally, flaky=flaky, checkpoint=store, resume=True)
        assert resumed.count(Status.SKIPPED) == 29
        assert resumed.outcomes[7].status is Status.OK
        assert tally.seen == tuple(range(30)), (
            f"each item's partial must count once after the resume; the stage holds {tally.seen}"
        )

    def test_shard_rows_hold_each_ok_item_once_when_a_worker_dies_after_flushing(self) -> None:
        """Rows on disk whose item's record died with its worker are not merged, nor twice.

        The worker dies in item 150's ``flush()``, after writing its rows: the
        item is not ``ok``, and items whose records were still in the dead
        worker's hands run again and flush again.
        """
        self.need("isolates_crashes")
        output = self.folder.parent / "rows.txt"
        shards = ShardRows(str(output), frozenset({150}), str(self.folder.parent))
        result = self.run(400, shards=shards)
        crashed = [o.index for o in result.outcomes if o.status is Status.CRASHED]
        assert crashed == [150], result.counts()
        _exactly_once(rows(output), (o.index for o in result.outcomes if o.ok))

    def test_shard_rows_of_an_item_whose_value_cannot_be_stored_are_left_out(self) -> None:
        """An item that fails because the checkpoint cannot store its value has no rows merged."""
        output = self.folder.parent / "rows.txt"
        result = self.run(
            30,
            shards=ShardRows(str(output)),
            unpicklable=frozenset({4}),
            local=frozenset({9}),
            checkpoint=self.folder.parent / "values.sqlite",
        )
        failed = sorted(o.index for o in result.outcomes if not o.ok)
        assert failed == [4, 9], result.counts()
        _exactly_once(rows(output), (o.index for o in result.outcomes if o.ok))


def _exactly_once(merged: list[int], ok: Iterable[int]) -> None:
    """The merged shard rows hold each ``ok`` item once, and nothing else."""
    counts, expected = Counter(merged), set(ok)
    twice = sorted(i for i, n in counts.items() if n > 1)
    stray = sorted(set(counts) - expected)
    lost = sorted(expected - set(counts))
    problems = f"{len(twice)} items twice {twice[:10]}, {len(stray)} items not ok " + (
        f"{stray[:10]}, {len(lost)} ok items lost {lost[:10]}"
    )
    assert not twice, f"the merged shards must hold each ok item's rows once: {problems}"
    assert not stray, f"the merged shards must hold only ok items' rows: {problems}"
    assert not lost, f"the merged shards must hold every ok item's rows: {problems}"
