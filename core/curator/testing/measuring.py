"""The kit's checks of per-item metrics: every item that ran carries what it cost.

A mixin of :class:`curator.testing.BackendConformance`, like
:class:`~curator.testing.grouping.GroupChecks`. Metrics are taken inside
:class:`curator.Work`, so a backend gets them by calling the work; one that
builds outcomes itself from :meth:`curator.Work.run_index` must carry
:attr:`curator.Work.measured` along (as :class:`curator.Successes` columns or
``Metrics.from_row``).
"""

from __future__ import annotations

from curator.model.outcome import Status
from curator.testing.mixin import KitMixin


class MetricsChecks(KitMixin):
    """Items that ran, ok or failed, carry metrics with one time per stage."""

    def test_every_item_that_ran_carries_its_metrics(self) -> None:
        """Seconds per stage, CPU time and peak memory on each outcome, failures included."""
        result = self.run(10, sleep=0.002, fail=frozenset({4}))
        stages = result.run.stages
        assert len(stages) == 2, stages  # the probe: a source and a sink
        for outcome in result.outcomes:
            metrics = outcome.metrics
            assert metrics is not None, (
                f"item {outcome.index} ran but has no metrics: a backend that builds outcomes "
                "from Work.run_index must carry Work.measured (or call the work)"
            )
            assert len(metrics.stages) == len(stages)
            assert all(seconds >= 0 for seconds in metrics.stages)
            assert metrics.cpu >= 0
            assert metrics.rss_peak > 0
        sink_seconds = [o.metrics.stages[-1] for o in result.outcomes if o.ok and o.metrics]
        assert max(sink_seconds) >= 0.001  # the probe's sink sleeps 2 ms per item

    def test_quick_items_are_sampled_and_a_failure_among_them_is_read(self) -> None:
        """Quick items are sampled, a failed one among them read; ``"all"`` measures every one."""
        result = self.run(60, fail=frozenset({50}))
        failed = result.outcomes[50]
        assert failed.status is Status.FAILED
        assert failed.metrics is not None, (
            "item 50 failed among quick items but has no metrics: a backend that builds "
            "outcomes from Work.run_index must carry Work.measured"
        )
        assert failed.metrics.rss_peak > 0
        assert all(o.finished >= o.started > 0 for o in result.outcomes)
        every = self.run(60, metrics="all")
        assert all(o.metrics is not None for o in every.outcomes), (
            "metrics='all' left items without metrics"
        )

    def test_metrics_can_be_turned_off(self) -> None:
        """``metrics=False``: outcomes carry none."""
        result = self.run(4, metrics=False)
        assert result.ok
        assert [o.metrics for o in result.outcomes] == [None] * 4
