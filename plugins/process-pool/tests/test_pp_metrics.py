"""Per-item metrics from worker processes: every path, memory growth, a fake GPU, storage."""

from __future__ import annotations

import io
import json
import math
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from curator import Pipeline, Sink, Status, WorkerInfo, run
from curator.checkpoint.store import read_latest
from curator.testing.probes import Numbers

MiB = 1 << 20


class Hog(Sink[int]):
    """Item ``big`` touches 300 MiB; the others a few bytes. Item ``bad`` raises."""

    def __init__(self, big: int = -1, bad: int = -1) -> None:
        self.big = big
        self.bad = bad

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        for _ in items:
            pass
        if index == self.bad:
            raise ValueError(f"bad item {index}")
        if index == self.big:
            block = b"\x01" * (300 * MiB)  # written, so resident
            del block
        return [str(index)]


@pytest.mark.parametrize("reporter", [None, "json"])
def test_every_item_from_a_worker_carries_its_metrics(reporter: str | None) -> None:
    """Columns (no reporter) and one outcome per item (a reporter listens): both carry them."""
    stream = io.StringIO()
    result = run(
        Pipeline(Numbers(40)).write(Hog(bad=7)),
        backend="process-pool",
        jobs=2,
        on_error="continue",
        metrics="all",
        reporter=reporter,
        reporter_options={"json": {"stream": stream}} if reporter else None,
    )
    assert result.run.stages == ("Numbers (source)", "Hog (sink)")
    for outcome in result.outcomes:
        assert outcome.metrics is not None, outcome
        assert len(outcome.metrics.stages) == 2
        assert outcome.metrics.rss_peak > 10 * MiB  # a Python process, at least
        assert outcome.metrics.gpu_peak is None
    assert result.outcomes[7].status is Status.FAILED
    assert [s.items for s in result.stage_summary()] == [40, 40]
    if reporter:
        finishes = [
            json.loads(line) for line in stream.getvalue().splitlines() if '"task_finish"' in line
        ]
        assert len(finishes) == 40
        assert all(len(e["metrics"]["stages"]) == 2 for e in finishes)


@pytest.mark.parametrize("metrics", ["all", True])
def test_the_item_that_raised_the_workers_memory_is_the_one_that_shows_it(
    metrics: bool | str,
) -> None:
    """Sampled or not: item 150 comes after a streak of quick items, and is still read."""
    result = run(
        Pipeline(Numbers(200)).write(Hog(big=150)),
        backend="process-pool",
        jobs=2,
        reporter=None,
        metrics=metrics,  # type: ignore[arg-type]
    )
    growth = {o.index: o.metrics.rss_growth for o in result.outcomes if o.metrics is not None}
    big = result.outcomes[150].metrics
    assert big is not None
    assert big.rss_growth >= 250 * MiB
    assert big.rss_peak >= 300 * MiB
    assert max(g for i, g in growth.items() if i != 150) < 100 * MiB
    if metrics == "all":
        assert len(growth) == 200
        assert not any(math.isnan(s) for s in big.stages)


def test_quick_items_are_sampled_and_the_rest_measured_in_full() -> None:
    """The defaults: a slow item and a failed one among quick ones are read; quick ones sampled."""
    from pp_pipelines import Behaviour

    stream = io.StringIO()
    result = run(
        Pipeline(Numbers(400)).write(
            Behaviour(fail=frozenset({300}), sleep={250: 0.05, 350: 0.05})
        ),
        backend="process-pool",
        jobs=2,
        on_error="continue",
        reporter="json",
        reporter_options={"json": {"stream": stream}},
    )
    measured = [o for o in result.outcomes if o.metrics is not None]
    # Quick items run unmeasured once a streak of them was measured: far fewer rows.
    assert 16 <= len(measured) < 200, len(measured)
    for index in (250, 300, 350):  # long or failed: read whether sampled or not
        metrics = result.outcomes[index].metrics
        assert metrics is not None, index
        assert metrics.rss_peak > 10 * MiB
        assert len(metrics.stages) == 2
    assert result.outcomes[300].status is Status.FAILED
    # Every item's own wall time, sampled or not.
    assert all(o.finished >= o.started > 0 for o in result.outcomes)
    assert result.outcomes[250].finished - result.outcomes[250].started >= 0.05
    # Stage summaries are over the items measured by stage (not the unmeasured long ones).
    split = [o for o in measured if not math.isnan(o.metrics.stages[0])]  # type: ignore[union-attr]
    assert [s.items for s in result.stage_summary()] == [len(split)] * 2
    finishes = [
        json.loads(line) for line in stream.getvalue().splitlines() if '"task_finish"' in line
    ]
    assert len(finishes) == 400
    assert sum(e.get("metrics") is not None for e in finishes) == len(measured)


class FakeCuda:
    def __init__(self) -> None:
        self.peak = 0

    def is_initialized(self) -> bool:
        return True

    def reset_peak_memory_stats(self) -> None:
        self.peak = 0

    def max_memory_allocated(self) -> int:
        return self.peak


class OnGpu(Sink[int]):
    """Puts a fake ``torch`` in its worker at setup; each item 'allocates' (index+1) MiB."""

    def setup(self, worker: WorkerInfo) -> None:
        fake = types.ModuleType("torch")
        fake.cuda = FakeCuda()  # type: ignore[attr-defined]
        sys.modules["torch"] = fake

    def teardown(self) -> None:
        sys.modules.pop("torch", None)

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        for _ in items:
            pass
        sys.modules["torch"].cuda.peak = (index + 1) * MiB  # type: ignore[attr-defined]
        return []


def test_gpu_peak_is_measured_in_the_worker_that_uses_the_gpu() -> None:
    result = run(Pipeline(Numbers(10)).write(OnGpu()), backend="process-pool", jobs=2)
    assert [o.metrics.gpu_peak for o in result.outcomes] == [  # type: ignore[union-attr]
        (i + 1) * MiB for i in range(10)
    ]
    assert "torch" not in sys.modules  # the run's own process never imported one


def test_metrics_off_sends_none(tmp_path: Path) -> None:
    checkpoint = tmp_path / "run.sqlite"
    result = run(
        Pipeline(Numbers(20)).write(Hog()),
        backend="process-pool",
        jobs=2,
        reporter=None,
        metrics=False,
        checkpoint=checkpoint,
    )
    assert result.ok
    assert {o.metrics for o in result.outcomes} == {None}
    assert {s.metrics for s in read_latest(checkpoint).values()} == {None}


@pytest.mark.parametrize("metrics", ["all", True])
def test_worker_metrics_are_stored_in_the_checkpoint(tmp_path: Path, metrics: bool | str) -> None:
    checkpoint = tmp_path / "run.sqlite"
    result = run(
        Pipeline(Numbers(300)).write(Hog(bad=200)),
        backend="process-pool",
        jobs=2,
        reporter=None,
        on_error="continue",
        checkpoint=checkpoint,
        metrics=metrics,  # type: ignore[arg-type]
    )
    stored = read_latest(checkpoint)

    def rows(metrics: Any) -> Any:  # NaN (not measured by stage) is unequal to itself
        return None if metrics is None else metrics.to_json()

    assert {i: rows(s.metrics) for i, s in stored.items()} == {
        o.index: rows(o.metrics) for o in result.outcomes
    }
    assert stored[200].metrics is not None  # the failed item, sampled or not
    kept = sum(s.metrics is not None for s in stored.values())
    assert kept == 300 if metrics == "all" else 16 <= kept < 300


def test_a_crashed_item_has_no_metrics_and_the_others_keep_theirs() -> None:
    from pp_pipelines import Behaviour

    result: Any = run(
        Pipeline(Numbers(10)).write(Behaviour(kill_at=frozenset({3}))),
        backend="process-pool",
        jobs=2,
        on_error="continue",
        reporter=None,
    )
    assert result.outcomes[3].status is Status.CRASHED
    assert result.outcomes[3].metrics is None
    assert all(o.metrics is not None for o in result.outcomes if o.ok)


def test_a_batch_listener_is_called_per_worker_message_not_per_item(tmp_path: Path) -> None:
    """``curator_batch_finish``: 2,000 fast items arrive in far fewer batches, each once."""
    from collections import Counter
    from collections.abc import Sequence

    from curator import Outcome, RunInfo, Successes, hookimpl
    from curator.testing.probes import probe
    from curator.testing.registries import isolated_registry
    from curator_backend_process_pool import hooks

    class Batches:
        def __init__(self) -> None:
            self.calls = 0
            self.seen: Counter[int] = Counter()

        @hookimpl
        def curator_batch_finish(self, run: RunInfo, batch: Sequence[Outcome | Successes]) -> None:
            self.calls += 1
            for entry in batch:
                self.seen.update(entry.indices if isinstance(entry, Successes) else [entry.index])

    listener = Batches()
    registry = isolated_registry(("process-pool", hooks), ("batches", listener))
    result = run(probe(2000, tmp_path), backend="process-pool", jobs=2, registry=registry,
                 reporter=None)  # fmt: skip
    assert result.ok
    assert listener.seen == Counter(range(2000))
    assert listener.calls < 2000 / 4, listener.calls  # chunks of many items per message
