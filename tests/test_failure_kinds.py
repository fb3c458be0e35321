"""One taxonomy of the failures curator names itself: :class:`curator.ErrorKind`."""

from __future__ import annotations

from pathlib import Path

import pytest

from curator import ErrorInfo, ErrorKind, Outcome, Status, run
from curator.testing.probes import probe


def test_a_crash_outcome_is_made_in_one_place() -> None:
    crashed = Outcome.crashed(4, "worker w-1 (pid 7) was killed by SIGKILL", "w-1", 10.0, 2, -9)
    assert (crashed.index, crashed.status, crashed.worker, crashed.attempt) == (
        4, Status.CRASHED, "w-1", 2,
    )  # fmt: skip
    assert crashed.started == 10.0 <= crashed.finished
    assert crashed.error is not None
    assert crashed.error.kind is ErrorKind.WORKER_CRASH
    assert (crashed.error.type, crashed.error.exit_code) == ("WorkerCrash", -9)


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_every_kind_is_stored_as_its_name_and_read_back_as_its_kind(kind: ErrorKind) -> None:
    error = ErrorInfo(kind.value, "what happened")
    stored = error.to_json()
    assert stored["type"] == kind.value
    assert type(stored["type"]) is str
    assert ErrorInfo.from_json(stored).kind is kind


def test_an_items_own_exception_has_no_kind() -> None:
    assert ErrorInfo.from_exception(ValueError("bad")).kind is None
    assert ErrorInfo("Timeout2", "a user's exception class of a similar name").kind is None


def test_the_failures_curator_names_in_a_run_carry_their_kind(tmp_path: Path) -> None:
    result = run(
        probe(4, tmp_path, fail=frozenset({1}), local=frozenset({2})),
        backend="thread-pool", jobs=2, on_error="continue", reporter=None,
        checkpoint=tmp_path / "c.sqlite",  # what the checkpoint cannot store fails its item
    )  # fmt: skip
    errors = {o.index: o.error for o in result.failures}
    assert errors[1] is not None
    assert errors[1].kind is None
    assert errors[2] is not None
    assert errors[2].kind is ErrorKind.UNPICKLABLE_RESULT
    interrupted = Outcome.interrupted(3, 1.0, "w")
    assert interrupted.error is not None
    assert interrupted.error.kind is ErrorKind.INTERRUPTED
