"""``curator_batch_finish``: one call per batch of final outcomes, every index in exactly one."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import pytest

from curator import Outcome, RunInfo, Status, Successes, hookimpl, run
from curator.model.errors import HookFailedError, TaskFailedError
from curator.testing.probes import probe
from curator.testing.registries import isolated_registry


class Batches:
    """Counts what each batch holds, by status, reading Successes as columns."""

    def __init__(self) -> None:
        self.calls = 0
        self.seen: Counter[int] = Counter()
        self.statuses: Counter[str] = Counter()

    @hookimpl
    def curator_batch_finish(self, run: RunInfo, batch: Sequence[Outcome | Successes]) -> None:
        self.calls += 1
        for entry in batch:
            if isinstance(entry, Successes):
                self.seen.update(entry.indices)
                self.statuses[entry.status.value] += len(entry)
            else:
                self.seen[entry.index] += 1
                self.statuses[entry.status.value] += 1


@pytest.mark.parametrize("backend", ["sequential", "thread-pool"])
def test_every_index_is_in_exactly_one_batch(tmp_path: Path, backend: str) -> None:
    listener = Batches()
    registry = isolated_registry(("batches", listener))
    store = tmp_path / "c.sqlite"
    jobs = 2 if backend == "thread-pool" else None
    # Item 3 fails twice (a retry that fails again), item 5 once (its retry succeeds).
    flaky = probe(20, tmp_path, fail=frozenset({3}), flaky=frozenset({5}))
    result = run(flaky, backend=backend, jobs=jobs, registry=registry, reporter=None,
                 on_error="continue", retries=1, checkpoint=store)  # fmt: skip
    assert result.count(Status.OK) == 19
    assert listener.seen == Counter(range(20)), listener.seen  # once each, retried or not
    assert listener.statuses == {"ok": 19, "failed": 1}
    # A resume: the done items come as one skipped batch per stored run of indices.
    again = Batches()
    run(flaky, backend=backend, jobs=jobs, registry=isolated_registry(("batches", again)),
        reporter=None, on_error="continue", checkpoint=store, resume=True)  # fmt: skip
    assert again.seen == Counter(range(20))
    assert again.statuses == {"skipped": 19, "failed": 1}
    if backend == "sequential":  # one worker: its stored runs of indices are consecutive
        assert again.calls < 20  # the skipped items in columns, not one call each


def test_cancelled_items_come_in_the_last_batch(tmp_path: Path) -> None:
    listener = Batches()
    with pytest.raises(TaskFailedError):
        run(probe(10, tmp_path, fail=frozenset({2})), registry=isolated_registry(
            ("batches", listener)), reporter=None)  # fmt: skip
    assert listener.seen == Counter(range(10))
    assert listener.statuses == {"ok": 2, "failed": 1, "cancelled": 7}


def test_a_failing_batch_listener_is_disabled_and_the_run_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken:
        @hookimpl
        def curator_batch_finish(self, batch: Sequence[Outcome | Successes]) -> None:
            raise RuntimeError("cannot count")

    # The tests' registries are strict: the finished run then raises, carrying its result.
    with pytest.raises(HookFailedError) as failed:
        run(probe(5, tmp_path), registry=isolated_registry(("broken", Broken())), reporter=None)
    assert failed.value.result.ok
    assert failed.value.result.count(Status.OK) == 5
    assert "curator_batch_finish raised RuntimeError: cannot count; it is disabled" in (caplog.text)


def test_a_stream_closed_early_still_announces_every_index_once(tmp_path: Path) -> None:
    """Found by a review: held failures and never-run items of a run ended early were lost."""
    from curator import stream

    listener = Batches()
    registry = isolated_registry(("batches", listener))
    with stream(probe(50, tmp_path, fail=frozenset({3})), registry=registry, reporter=None,
                on_error="continue", retries=1) as outcomes:  # fmt: skip
        for taken, _ in enumerate(outcomes, 1):
            if taken == 10:
                break
    result = outcomes.result
    assert result is not None
    assert listener.seen == Counter(range(50)), listener.seen
    assert sum(listener.statuses.values()) == 50
    # A stream keeps only its failures: compare with the result's counts.
    assert listener.statuses == {s.value: n for s, n in result.counts().items()}
