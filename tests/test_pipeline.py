from __future__ import annotations

import pickle
import re
from collections.abc import Iterator

import pytest
from pipelines import Collect, Numbers, double

from curator import Pipeline, Source, UsageError, run
from curator.model.pipeline import check_runnable


def test_shape_matches_the_origin() -> None:
    pipeline = Numbers(5).filter(double).filter(double).write(Collect())
    assert len(pipeline) == 5
    assert pipeline[3] == ["12"]
    assert pipeline[-1] == ["16"]


def test_pipelines_are_immutable_templates() -> None:
    base = Numbers(3).filter(double)
    a = base.write(Collect())
    b = base.filter(double).write(Collect())
    assert base.sink is None
    assert a[1] == ["2"]
    assert b[1] == ["4"]


def test_source_can_write_directly() -> None:
    assert Numbers(2).write(Collect())[1] == ["1"]


def test_out_of_range_index() -> None:
    with pytest.raises(IndexError, match="out of range for a pipeline of 3 items"):
        Numbers(3).write(Collect())[3]


def test_running_without_sink_says_to_call_write() -> None:
    with pytest.raises(UsageError, match=r"call \.write\(sink\)"):
        Numbers(3).filter(double)[0]
    with pytest.raises(UsageError, match=r"bare source \(Numbers\).*\.write\(sink\)"):
        check_runnable(Numbers(3))
    with pytest.raises(UsageError, match="expected a curator Pipeline, got int"):
        check_runnable(3)


def test_stages_must_be_callable() -> None:
    with pytest.raises(UsageError, match="a filter must be callable"):
        Numbers(1).filter(3)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="a sink must be callable"):
        Numbers(1).write("out")  # type: ignore[arg-type]


def test_pickles_and_describes_itself() -> None:
    pipeline = Numbers(4).filter(double).write(Collect())
    clone = pickle.loads(pickle.dumps(pipeline))
    assert isinstance(clone, Pipeline)
    assert clone[2] == ["4"]
    assert repr(pipeline) == "Pipeline(Numbers -> double -> Collect)"


def forgets_to_yield(items: Iterator[int]) -> Iterator[int]:
    for _ in items:
        pass  # a filter that forgot its yield (or return) returns None
    return None  # type: ignore[return-value]


class ReturnsNone:
    def __call__(self, items: Iterator[int]) -> Iterator[int]:
        return None  # type: ignore[return-value]


class NoItems(Source[int]):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> Iterator[int]:
        return None  # type: ignore[return-value]


@pytest.mark.parametrize("metrics", [True, False])
@pytest.mark.parametrize(
    ("pipeline", "says"),
    [
        (Numbers(3).filter(forgets_to_yield).write(Collect()),
         "filter 1 (forgets_to_yield) returned None, which is not an iterable of items"),
        (Numbers(3).filter(double).filter(ReturnsNone()).write(Collect()),
         "filter 2 (ReturnsNone) returned None, which is not an iterable of items"),
        (NoItems().filter(double).write(Collect()),
         "the source (NoItems) returned None for item 1, which is not an iterable of items"),
    ],
)  # fmt: skip
def test_a_stage_that_returns_no_iterable_is_named_not_the_sink(
    pipeline: Pipeline[int], says: str, metrics: bool
) -> None:
    result = run(pipeline, indices=[1], on_error="continue", metrics=metrics, reporter=None)
    (failure,) = result.failures
    assert failure.error is not None
    assert failure.error.type == "TypeError"
    assert says in failure.error.message
    assert "Collect" not in failure.error.message
    with pytest.raises(TypeError, match=re.escape(says)):
        pipeline[1]
