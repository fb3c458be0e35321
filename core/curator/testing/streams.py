"""The kit's check that a stream left early records every item that finished.

A mixin of :class:`curator.testing.BackendConformance`. A stream hands its
consumer control between outcomes; a parallel backend's workers go on
meanwhile. When the consumer leaves the loop and closes the stream, the run
stops at once, as at a hard stop: the backend must still hand over what
finished (those items stay ``ok`` and are recorded, so a resume does not run
them, and their side effects, again), and no item that did not finish may
read ``ok``.
"""

from __future__ import annotations

from curator.checkpoint.latest import read_latest
from curator.model.outcome import Status
from curator.running.streaming import stream
from curator.testing.mixin import KitMixin
from curator.testing.probes import executions, probe, release, settled

COUNT = 30
QUIET = 1.0
"""Seconds without a new finished item after which the workers are taken to be still."""


class StreamChecks(KitMixin):
    """Leaving a stream early loses nothing that finished."""

    def test_a_stream_left_early_records_every_item_that_finished(self) -> None:
        """The consumer leaves after one outcome; items that finished meanwhile stay ok.

        Only the first items to start can finish (the rest hang), so the run is
        still once they did: a backend that runs ahead (threads, a batch system)
        finishes several, one that the consumer's pace holds back (a pool that
        dispatches as outcomes are taken) fewer; either way what finished must
        be handed over, recorded, and skipped by a resume.
        """
        store = self.folder.parent / "left-early.sqlite"
        can_finish = self.n_jobs + 1
        outcomes = stream(
            probe(COUNT, self.folder, hang_after=can_finish),
            backend=self.backend,
            jobs=self.n_jobs,
            options=self.run_options,
            registry=self.registry,
            checkpoint=store,
            reporter=None,
        )
        with self.time_limit.waiting_for("the stream's first outcome, then its close"), outcomes:
            first = next(iter(outcomes))
            settled(self.folder, quiet=QUIET)  # what the workers finish while the consumer waits
        finished = {execution.index for execution in executions(self.folder)}
        assert first.ok, first
        assert first.index in finished, (first, sorted(finished))
        result = outcomes.result
        assert result is not None, "closing a stream must end its run and give its result"
        assert result.count(Status.OK) == len(finished), (
            f"{len(finished)} item(s) finished ({sorted(finished)}), but the stream left "
            f"early reports {dict(result.counts())}: an item that finished while the "
            "consumer held an outcome must be handed over as ok when the stream closes"
        )
        assert result.count(Status.CANCELLED) + result.count(Status.INTERRUPTED) == (
            COUNT - len(finished)
        ), result.counts()
        recorded = {i for i, stored in read_latest(store).items() if stored.status == "ok"}
        assert recorded == finished, (
            f"the checkpoint records {sorted(recorded)} as ok, but {sorted(finished)} "
            "finished: a resume would run them again, or skip an item that never ran"
        )
        release(self.folder)  # the resume's items finish
        resumed = self.run(COUNT, hang_after=can_finish, checkpoint=store, resume=True)
        assert {o.index for o in resumed.outcomes if o.status is Status.SKIPPED} == finished
        assert resumed.ok, resumed.counts()
