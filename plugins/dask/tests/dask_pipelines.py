"""Pipelines for the dask tests' `curator run` subprocesses (module-level, importable by name)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from curator import Pipeline
from curator.testing.probes import probe


def slow() -> Pipeline[int]:
    """40 items of 2 s each, recorded in the folder ``DASK_TEST_FOLDER`` names."""
    return probe(40, os.environ["DASK_TEST_FOLDER"], sleep=2.0)


def slow_to_close() -> Pipeline[int]:
    """:func:`slow`, in a run whose LocalCluster notes each close and takes 2 s to start it.

    Each ``close()`` writes ``closing`` to ``$DASK_TEST_FOLDER/closes`` before it
    starts, and ``closed STATUS`` once it returned: a close that a signal
    abandoned leaves one ``closing`` without its ``closed``, and distributed's
    exit hook then closes the cluster again (a second ``closing``).
    """
    import time

    from distributed.deploy.spec import SpecCluster

    notes = Path(os.environ["DASK_TEST_FOLDER"], "closes")
    real_close = SpecCluster.close

    def close(self: SpecCluster, *args: object, **kwargs: object) -> object:
        with notes.open("a") as file:
            file.write("closing\n")
        time.sleep(2.0)  # the test's second Ctrl-C lands here
        result = real_close(self, *args, **kwargs)  # type: ignore[arg-type]
        with notes.open("a") as file:
            file.write(f"closed {self.status.name}\n")
        return result

    SpecCluster.close = close  # type: ignore[method-assign,assignment]
    return slow()


class Flush:
    """A filter whose ``teardown()`` raises, after every item ran."""

    def setup(self, worker: object) -> None:
        pass

    def teardown(self) -> None:
        raise OSError("flush failed")

    def __call__(self, items: Iterator[int]) -> Iterator[int]:
        yield from items
