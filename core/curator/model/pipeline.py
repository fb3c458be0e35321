"""The pipeline model: an indexed Source, a chain of Filters and a Sink.

A :class:`Pipeline` is an indexed job. ``pipeline[i]`` reads item ``i`` from the
source, streams it through every filter and hands the result to the sink,
which returns what it wrote (for example a list of paths). Runs dispatch these
indices to a backend; nothing here knows about backends.
"""

from __future__ import annotations

import operator
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import Generic, TypeVar

from curator.model.errors import UsageError

T = TypeVar("T")

FilterFn = Callable[[Iterator[T]], Iterator[T]]
"""Anything that turns a stream of items into a stream of items."""

SinkFn = Callable[[Iterator[T], int], list[str]]
"""Anything that consumes a stream of items for one index and returns what it wrote."""


class Source(ABC, Generic[T]):
    """An indexed collection of work: ``len(source)`` items, each yielding a stream.

    Subclasses implement :meth:`__len__` and :meth:`__getitem__`. Keep the
    object cheap to pickle (paths and parameters, not loaded data): parallel
    backends send it to every worker.
    """

    @abstractmethod
    def __len__(self) -> int:
        """Return the number of indices this source provides."""

    @abstractmethod
    def __getitem__(self, index: int) -> Iterator[T]:
        """Return the stream of items that make up index ``index``."""

    def filter(self, f: FilterFn[T]) -> Pipeline[T]:
        """Start a pipeline from this source with ``f`` as its first filter."""
        return Pipeline(self).filter(f)

    def write(self, sink: SinkFn[T]) -> Pipeline[T]:
        """Start a pipeline from this source that writes straight into ``sink``."""
        return Pipeline(self).write(sink)


class Filter(ABC, Generic[T]):
    """A stage that transforms a stream of items; any callable of that shape works too."""

    @abstractmethod
    def __call__(self, items: Iterator[T]) -> Iterator[T]:
        """Transform ``items`` lazily and yield the result."""


class Sink(ABC, Generic[T]):
    """The last stage: consumes the stream of one index and says what it wrote."""

    @abstractmethod
    def __call__(self, items: Iterator[T], index: int) -> list[str]:
        """Write ``items`` for ``index`` and return what was written (e.g. paths)."""


class Pipeline(Generic[T]):
    """A source, its filters and a sink: one independent task per index.

    Pipelines are immutable; :meth:`filter` and :meth:`write` return new ones,
    so a partial pipeline can be reused as a template.

    Parameters
    ----------
    source
        Where the items come from.
    filters
        Transformations applied in order.
    sink
        Where the items go; required before the pipeline can run.
    """

    __slots__ = ("filters", "sink", "source")

    def __init__(
        self,
        source: Source[T],
        filters: Sequence[FilterFn[T]] = (),
        sink: SinkFn[T] | None = None,
    ) -> None:
        self.source = source
        self.filters: tuple[FilterFn[T], ...] = tuple(filters)
        self.sink = sink

    def filter(self, f: FilterFn[T]) -> Pipeline[T]:
        """Return a new pipeline with ``f`` appended to the filters."""
        if not callable(f):
            raise UsageError(f"a filter must be callable, got {type(f).__name__}")
        return Pipeline(self.source, (*self.filters, f), self.sink)

    def write(self, sink: SinkFn[T]) -> Pipeline[T]:
        """Return a new pipeline that writes into ``sink``."""
        if not callable(sink):
            raise UsageError(f"a sink must be callable, got {type(sink).__name__}")
        return Pipeline(self.source, self.filters, sink)

    def __len__(self) -> int:
        return len(self.source)

    def position(self, index: int) -> int:
        """The source position ``index`` stands for (negative ones count from the end).

        Raises
        ------
        IndexError
            When ``index`` is outside the source.
        """
        position = operator.index(index)
        size = len(self.source)
        if position < 0:
            position += size
        if not 0 <= position < size:
            raise IndexError(f"index {index} is out of range for a pipeline of {size} items")
        return position

    def __getitem__(self, index: int) -> list[str]:
        """Run index ``index`` end to end and return what the sink wrote."""
        if self.sink is None:
            raise UsageError(_NO_SINK)
        position = self.position(index)
        items = self.source[position]
        if not hasattr(type(items), "__iter__"):  # inline: this runs per stage per item
            refuse_items(items, self.source, 0, index)
        for number, stage in enumerate(self.filters, 1):
            items = stage(items)
            if not hasattr(type(items), "__iter__"):
                refuse_items(items, stage, number, index)
        return self.sink(items, position)

    def __repr__(self) -> str:
        stages = [type(self.source).__name__, *(_stage_name(f) for f in self.filters)]
        if self.sink is not None:
            stages.append(_stage_name(self.sink))
        return f"Pipeline({' -> '.join(stages)})"

    def __getstate__(self) -> tuple[Source[T], tuple[FilterFn[T], ...], SinkFn[T] | None]:
        return (self.source, self.filters, self.sink)

    def __setstate__(
        self, state: tuple[Source[T], tuple[FilterFn[T], ...], SinkFn[T] | None]
    ) -> None:
        self.source, self.filters, self.sink = state


_NO_SINK = "the pipeline has no sink: call .write(sink) on it before running it"


def refuse_items(items: object, stage: object, number: int, index: int) -> None:
    """Raise the error of a stage that handed on something that is not an iterable of items.

    Without it the *next* stage fails on it (``'NoneType' object is not
    iterable`` in the sink), and the sink is blamed for a filter's missing
    ``return``. ``number`` is 0 for the source, ``n`` for filter ``n``. An
    object with ``__getitem__`` only (the old iteration protocol) passes.
    """
    if hasattr(type(items), "__getitem__"):
        return
    what = "None" if items is None else f"a {type(items).__name__}"
    if number == 0:
        raise TypeError(
            f"the source ({type(stage).__name__}) returned {what} for item {index}, which is "
            "not an iterable of items: Source.__getitem__ must return (or yield) the items "
            "of one index"
        )
    raise TypeError(
        f"filter {number} ({_stage_name(stage)}) returned {what}, which is not an iterable "
        "of items: a filter must return (or yield) the items it passes on; one that ends "
        "without a return or yield returns None"
    )


def _stage_name(stage: object) -> str:
    name = getattr(stage, "__qualname__", None)
    return name if isinstance(name, str) else type(stage).__name__


def check_runnable(pipeline: object) -> Pipeline[object]:
    """Return ``pipeline`` if it can run, else raise a :class:`UsageError` saying why."""
    if isinstance(pipeline, Source):
        raise UsageError(f"got a bare source ({type(pipeline).__name__}): {_NO_SINK}")
    if not isinstance(pipeline, Pipeline):
        raise UsageError(
            f"expected a curator Pipeline, got {type(pipeline).__name__}; "
            "build one with source.filter(f).write(sink)"
        )
    if pipeline.sink is None:
        raise UsageError(_NO_SINK)
    source = pipeline.source
    try:
        size = len(source)
    except Exception as exc:  # len() itself rejects negative and non-integer sizes
        raise UsageError(
            f"the source ({type(source).__name__}) cannot say how many items it has: "
            f"len() raised {type(exc).__name__}: {exc}"
        ) from None
    del size
    return pipeline
