"""`curator.uninterrupted`: a hard stop waits for a backend's release of its workers.

Found on Dask: the second Ctrl-C landed inside ``cluster.close()`` and the
core's handler raised there; the half-closed cluster then held the process
for 10 s in distributed's exit hook. (The real-cluster test is in the Dask
plugin's suite; these check the block itself, with real signals.)
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence
from typing import ClassVar

import pytest
from core_support import registry_with
from pipelines import Collect

from curator import (
    Backend,
    Capabilities,
    Event,
    HardStop,
    RunInterrupted,
    Status,
    Work,
    run,
    uninterrupted,
)
from curator.running.interrupts import Interrupts, Terminated
from curator.testing.probes import Numbers

pytestmark = pytest.mark.usefixtures("default_signal_handlers")


def stopping_run() -> Interrupts:
    """A run's handlers after its first Ctrl-C (running items may finish)."""
    interrupts = Interrupts(lambda: None, grace=60.0)
    interrupts.__enter__()
    os.kill(os.getpid(), signal.SIGINT)
    assert interrupts.requested
    return interrupts


def release(
    done: list[str], what: str, *signals: signal.Signals, fail: bool = False, wait: float = 0.0
) -> None:
    """A backend's release: ``signals`` arrive inside it, one by one, after ``wait`` seconds;
    ``done`` notes its steps."""
    with uninterrupted(what):
        time.sleep(wait)
        for signum in signals:
            os.kill(os.getpid(), signum)  # handled at once, inside the block
            done.append(f"after {signum.name}")
        if fail:
            raise ValueError("the release failed")
        done.append("released")


def test_a_second_ctrl_c_inside_waits_for_the_block_then_stops(
    capsys: pytest.CaptureFixture[str],
) -> None:
    interrupts = stopping_run()
    done: list[str] = []
    try:
        with pytest.raises(HardStop) as stopped:
            release(done, "closing the test cluster", signal.SIGINT)
    finally:
        interrupts.close()
    assert done == ["after SIGINT", "released"]
    assert not isinstance(stopped.value, Terminated)
    assert (
        "curator: closing the test cluster before stopping (Ctrl-C 2 more time(s) to abandon it)"
        in capsys.readouterr().err
    )


def test_a_sigterm_inside_waits_for_the_block_then_terminates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    interrupts = Interrupts(lambda: None, grace=60.0)
    done: list[str] = []
    with interrupts, pytest.raises(Terminated):
        # A Ctrl-C besides: still a termination.
        release(done, "cancelling the test jobs", signal.SIGTERM, signal.SIGINT)
    assert done == ["after SIGTERM", "after SIGINT", "released"]
    assert interrupts.terminated
    assert "curator: cancelling the test jobs before stopping (SIGTERM)" in capsys.readouterr().err


def test_the_third_ctrl_c_inside_abandons_the_block() -> None:
    interrupts = stopping_run()
    done: list[str] = []
    try:
        with pytest.raises(HardStop):
            release(done, "closing a cluster that hangs", *[signal.SIGINT] * 3)
    finally:
        interrupts.close()
    assert done == ["after SIGINT", "after SIGINT"]
    # The next block counts its presses afresh.
    interrupts = stopping_run()
    again: list[str] = []
    try:
        with pytest.raises(HardStop):
            release(again, "closing again", signal.SIGINT)
    finally:
        interrupts.close()
    assert again == ["after SIGINT", "released"]


def test_an_error_leaving_the_block_is_not_replaced_by_the_stop_it_deferred() -> None:
    interrupts = stopping_run()
    done: list[str] = []
    try:
        with pytest.raises(ValueError, match="the release failed"):
            release(done, "closing the test cluster", signal.SIGINT, fail=True)
        release(done, "closing another")  # nothing deferred is left over for it
    finally:
        interrupts.close()
    assert done == ["after SIGINT", "released"]


def test_a_stop_deferred_in_a_finally_does_not_replace_the_error_on_its_way() -> None:
    """Found in review: blocks sit in `finally` and `except` clauses, where the exception
    being handled was replaced by the deferred stop (a backend's error lost)."""
    interrupts = stopping_run()
    done: list[str] = []

    def backend_with_a_bug() -> None:
        try:
            raise RuntimeError("backend bug")
        finally:
            release(done, "releasing after a bug", signal.SIGINT)

    try:
        with pytest.raises(RuntimeError, match="backend bug"):
            backend_with_a_bug()
        release(done, "the next release")  # nothing deferred is left over for it
    finally:
        interrupts.close()
    assert done == ["after SIGINT", "released", "released"]


def test_the_grace_periods_end_is_no_press_inside_a_release(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Found in review: the grace timer ran on after the hard stop, fired inside the
    release and counted as one of the three presses that abandon it."""
    interrupts = Interrupts(lambda: None, grace=0.2)
    interrupts.__enter__()
    done: list[str] = []
    try:
        os.kill(os.getpid(), signal.SIGINT)  # the first
        with pytest.raises(HardStop):
            os.kill(os.getpid(), signal.SIGINT)  # the second: the hard stop, raised
        with pytest.raises(HardStop):
            release(done, "closing after the hard stop", signal.SIGINT, wait=0.6)
    finally:
        interrupts.close()
    assert done == ["after SIGINT", "released"]
    err = capsys.readouterr().err
    assert "grace period" not in err
    assert "closing after the hard stop before stopping (Ctrl-C 2 more time(s)" in err


def test_a_stop_left_behind_by_a_block_reaches_no_later_run() -> None:
    """A signal that lands as the last block ends raises there and skips its reset."""
    uninterrupted._deferred = HardStop()  # what such a signal leaves
    uninterrupted._presses = 2
    interrupts = Interrupts(lambda: None, grace=60.0)
    done: list[str] = []
    with interrupts:
        release(done, "a later run's release")
    assert done == ["released"]
    assert uninterrupted.forget() is None


def test_nested_blocks_raise_the_deferred_stop_once_the_outermost_ends() -> None:
    interrupts = stopping_run()
    done: list[str] = []

    def outer() -> None:
        with uninterrupted("outer"):
            release(done, "inner", signal.SIGINT)
            done.append("after the inner block")

    try:
        with pytest.raises(HardStop):
            outer()
    finally:
        interrupts.close()
    assert done == ["after SIGINT", "released", "after the inner block"]


def test_outside_a_run_and_outside_the_main_thread_the_block_is_plain_code() -> None:
    done: list[str] = []
    with pytest.raises(KeyboardInterrupt):  # Python's own handler: raised at once
        release(done, "no run", signal.SIGINT)
    assert done == []
    seen: list[int] = []

    def in_a_thread() -> None:
        with uninterrupted("a thread's release") as block:
            seen.append(len(type(block)._open))

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    thread.join()
    assert seen == [0]


class ReleasesSlowly(Backend):
    """Runs items in-process; the first Ctrl-C comes from item 1, the second during release."""

    name = "releases-slowly"
    capabilities = Capabilities()
    released: ClassVar[list[str]] = []

    def execute(self, work: Work, indices: Sequence[int]) -> Iterator[Event]:
        try:
            for index in indices:
                if self.stop_requested:
                    return
                if index == 1:
                    os.kill(os.getpid(), signal.SIGINT)
                yield work(index)
        finally:
            with uninterrupted("releasing the test workers"):
                os.kill(os.getpid(), signal.SIGINT)
                self.released.append("released")


def test_a_run_whose_backend_releases_inside_ends_interrupted_with_the_release_done() -> None:
    with pytest.raises(RunInterrupted) as stopped:
        run(
            Numbers(5).write(Collect()),
            backend="releases-slowly",
            registry=registry_with(ReleasesSlowly),
            reporter=None,
        )
    assert ReleasesSlowly.released == ["released"]
    result = stopped.value.result
    assert [o.status for o in result.outcomes] == [Status.OK] * 2 + [Status.CANCELLED] * 3
