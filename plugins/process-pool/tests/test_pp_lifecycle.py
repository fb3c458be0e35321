"""Worker identity on worker processes: setup/teardown, initializer(worker=), env, thread caps."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from curator import Filter, Session, Status, TeardownError, UsageError, WorkerInfo, run
from curator.testing.probes import Numbers

SEEN: list[WorkerInfo] = []


def remember_worker(tag: str, worker: WorkerInfo) -> None:
    """An initializer that takes the worker: it writes what it was given."""
    Path(tag, f"init.{worker.slot}.{worker.jobs}.{worker.backend}.{os.getpid()}").touch()


class Env(Filter[int]):
    """Yields, per item, what the worker's environment says about ``names``."""

    def __init__(self, *names: str) -> None:
        self.names = names

    def __call__(self, items: Iterator[int]) -> Iterator[str]:  # type: ignore[override]
        for _ in items:
            yield from (f"{n}={os.environ.get(n, '-')}" for n in self.names)


class Resource(Filter[int]):
    """Writes a file at setup and at teardown; fails either on request."""

    def __init__(self, folder: str, fail: str = "") -> None:
        self.folder = folder
        self.fail = fail
        self.slot = -1

    def setup(self, worker: WorkerInfo) -> None:
        if self.fail == "setup":
            raise RuntimeError("no GPU left")
        self.slot = worker.slot
        Path(self.folder, f"setup.{worker.slot}.{os.getpid()}").touch()

    def teardown(self) -> None:
        Path(self.folder, f"teardown.{self.slot}.{os.getpid()}").touch()
        if self.fail == "teardown":
            raise RuntimeError("could not release the GPU")

    def __call__(self, items: Iterator[int]) -> Iterator[int]:
        yield from items


def _sink(items: Iterator[object], index: int) -> list[str]:
    return [str(i) for i in items]


def test_an_initializer_that_takes_worker_gets_its_worker_info(tmp_path: Path) -> None:
    result = run(
        Numbers(8).write(_sink),
        backend="process-pool",
        jobs=2,
        options={"initializer": remember_worker, "initargs": (str(tmp_path),)},
        reporter=None,
    )
    assert result.ok
    seen = sorted(p.name.split(".")[1:4] for p in tmp_path.glob("init.*"))
    assert seen == [["0", "2", "process-pool"], ["1", "2", "process-pool"]]


def test_setup_and_teardown_run_once_per_worker_and_run_in_a_session(tmp_path: Path) -> None:
    with Session(backend="process-pool", jobs=2) as session:
        for _ in range(2):
            result = session.run(Numbers(20).filter(Resource(str(tmp_path))).write(_sink))
            assert result.ok
    setups = sorted(p.name for p in tmp_path.glob("setup.*"))
    teardowns = sorted(p.name for p in tmp_path.glob("teardown.*"))
    # The same two workers served both runs: each set up and tore down once per run.
    assert len(setups) == len(teardowns)
    assert [name.replace("setup", "teardown") for name in setups] == teardowns
    assert 1 <= len({name.split(".")[2] for name in setups}) <= 2  # pids


@pytest.mark.parametrize("fail", ["setup", "teardown"])
def test_a_stage_hook_that_raises_is_a_usage_error_naming_it(fail: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        run(
            Numbers(6).filter(Resource(str(tmp_path), fail=fail)).write(_sink),
            backend="process-pool",
            jobs=2,
            reporter=None,
        )
    expected = "no GPU left" if fail == "setup" else "could not release the GPU"
    assert f"Resource.{fail}" in str(caught.value)
    assert expected in str(caught.value)
    if fail == "teardown":  # after every item: the caller keeps their outcomes
        assert isinstance(caught.value, TeardownError)
        assert caught.value.result is not None
        assert caught.value.result.count(Status.OK) == 6


def test_worker_env_gives_each_worker_its_own_gpu() -> None:
    result = run(
        Numbers(40).filter(Env("CUDA_VISIBLE_DEVICES")).write(_sink),
        backend="process-pool",
        jobs=2,
        options={"worker_env": "CUDA_VISIBLE_DEVICES={slot}"},
        reporter=None,
    )
    assert result.ok
    for outcome in result.outcomes:
        slot = outcome.worker.removeprefix("process-")
        assert outcome.value == [f"CUDA_VISIBLE_DEVICES={slot}"]


def test_bad_worker_env_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"KeyError\('gpu'\) is not one of \{slot\}"):
        run(Numbers(2).write(_sink), backend="process-pool", options={"worker_env": "A={gpu}"})


@pytest.mark.parametrize("width", ["99999999999", "999999999", "200000"])
def test_a_huge_width_in_worker_env_is_a_usage_error(width: str) -> None:
    """Found by the second campaign: {slot:>99999999999} ended the run with a MemoryError."""
    says = rf"worker_env A='{{slot:>{width}}}': a width of {width} is more than an environment"
    with pytest.raises(UsageError, match=says):
        run(Numbers(2).write(_sink), backend="process-pool",
            options={"worker_env": f"A={{slot:>{width}}}"})  # fmt: skip


def test_worker_threads_are_capped_unless_set_or_turned_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cap = max(1, (os.cpu_count() or 1) // 2)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")  # the user's choice stands
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
    pipeline = Numbers(2).filter(Env(*names)).write(_sink)
    capped = run(pipeline, backend="process-pool", jobs=2, reporter=None)
    assert capped.outcomes[0].value == [
        f"OMP_NUM_THREADS={cap}",
        f"MKL_NUM_THREADS={cap}",
        "OPENBLAS_NUM_THREADS=3",
    ]
    free = run(
        pipeline, backend="process-pool", jobs=2, options={"cap_threads": False}, reporter=None
    )
    assert free.outcomes[0].value == [
        "OMP_NUM_THREADS=-",
        "MKL_NUM_THREADS=-",
        "OPENBLAS_NUM_THREADS=3",
    ]


class BlasThreads(Filter[int]):
    """Yields how many threads numpy's OpenBLAS uses in this worker (as threadpoolctl reads it)."""

    def __call__(self, items: Iterator[int]) -> Iterator[int]:  # type: ignore[override]
        for _ in items:
            yield openblas_threads()


def openblas_threads() -> int:
    import ctypes

    import numpy  # noqa: F401  # loads its OpenBLAS

    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    for path in paths:
        library = ctypes.CDLL(path)
        for symbol in (
            "scipy_openblas_get_num_threads64_",
            "openblas_get_num_threads64_",
            "openblas_get_num_threads",
        ):
            getter = getattr(library, symbol, None)
            if getter is not None:
                return int(getter())
    raise AssertionError(f"no OpenBLAS thread getter in {sorted(paths)}")


def test_numpy_in_a_worker_sees_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    if os.environ.get("CURATOR_REQUIRE_NUMPY") != "1":
        pytest.importorskip("numpy")
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    # Four workers on this machine get cpus // 4 threads each (at least 1); the
    # parent's own count, without a cap, would be every CPU.
    jobs = 4
    result = run(
        Numbers(4).filter(BlasThreads()).write(_sink),
        backend="process-pool",
        jobs=jobs,
        reporter=None,
    )
    assert result.ok, result.failures
    expected = max(1, (os.cpu_count() or 1) // jobs)
    assert {tuple(o.value or ()) for o in result.outcomes} == {(str(expected),)}
