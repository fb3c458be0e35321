"""Pipelines for the process-pool tests: module-level, so every start method can import them."""

from __future__ import annotations

import mmap
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from curator import Pipeline, Sink
from curator.testing.probes import Numbers, crash


class Behaviour(Sink[int]):
    """Per-index behaviour: fail, crash in several ways, sleep; records pid and runs."""

    def __init__(
        self,
        fail: frozenset[int] = frozenset(),
        exit_at: frozenset[int] = frozenset(),
        kill_at: frozenset[int] = frozenset(),
        segfault_at: frozenset[int] = frozenset(),
        sleep: dict[int, float] | None = None,
        default_sleep: float = 0.0,
        markers: str | None = None,
        once: bool = False,
        spin_at: frozenset[int] = frozenset(),
        wait_for_markers: dict[int, int] | None = None,
    ) -> None:
        self.fail = fail
        self.exit_at = exit_at
        self.kill_at = kill_at
        self.segfault_at = segfault_at
        self.sleep = sleep or {}
        self.default_sleep = default_sleep
        self.markers = markers
        self.once = once
        self.spin_at = spin_at
        self.wait_for_markers = wait_for_markers or {}
        """By index: the item waits (60 s at most) until that many markers exist."""

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        list(items)
        if self.markers:
            # One file per execution, so tests can count how often each item ran.
            marker = Path(self.markers) / f"{index}.{os.getpid()}.{time.monotonic_ns()}"
            marker.write_text(str(os.getpid()))
        if index in self.exit_at and not (self.once and self._ran_before(index)):
            crash("exit", 3)
        if index in self.kill_at:
            crash("kill")
        if index in self.segfault_at:
            crash("segfault")
        while index in self.spin_at:
            pass  # a busy loop that never ends: only a kill stops it
        if index in self.wait_for_markers:
            assert self.markers is not None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                if len(os.listdir(self.markers)) >= self.wait_for_markers[index]:
                    break
                time.sleep(0.01)
        delay = self.sleep.get(index, self.default_sleep)
        if delay:
            time.sleep(delay)
        if index in self.fail and not (self.once and self._ran_before(index)):
            raise ValueError(f"bad item {index}")
        return [str(index), str(os.getpid())]

    def _ran_before(self, index: int) -> bool:
        assert self.markers is not None
        return len(list(Path(self.markers).glob(f"{index}.*"))) > 1


def pipeline(count: int, **behaviour: object) -> Pipeline[int]:
    return Numbers(count).write(Behaviour(**behaviour))  # type: ignore[arg-type]


INITIALIZED: list[str] = []


def initialize(*args: str) -> None:
    INITIALIZED.extend(args)


def failing_initializer() -> None:
    raise RuntimeError("initializer exploded")


class ReportInit(Sink[int]):
    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        list(items)
        return list(INITIALIZED)


class HoldsALock(Sink[int]):
    def __init__(self) -> None:
        self.lock = threading.Lock()

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        return []


# Targets for `curator run` in a subprocess.
slow_marked = Numbers(400).write(
    Behaviour(default_sleep=0.05, markers=os.environ.get("PP_TEST_MARKERS"))
)

slow_30s = Numbers(20).write(
    Behaviour(default_sleep=30.0, markers=os.environ.get("PP_TEST_MARKERS"))
)

spinning = Numbers(40).write(
    Behaviour(default_sleep=0.2, spin_at=frozenset({0}), markers=os.environ.get("PP_TEST_MARKERS"))
)
small = pipeline(4)  # a quick run for CLI tests
locked = Numbers(4).write(HoldsALock())  # cannot be pickled
fails_at_3 = pipeline(10, fail=frozenset({3}))


class WhereAmI(Sink[int]):
    """Says which worker ran the item and the world it saw: pid, $CURATOR_TEST_X, cwd, probe.

    ``probe`` is a module the test writes on ``sys.path`` (and edits between runs).
    """

    def __init__(self, probe: bool = False, fail_first: str | None = None) -> None:
        self.probe = probe
        self.fail_first = fail_first

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        list(items)
        if self.fail_first is not None and index == 0:
            marker = Path(self.fail_first)
            if not marker.exists():
                marker.write_text(str(os.getpid()))
                raise RuntimeError("first try of item 0 fails")
        value = ""
        if self.probe:
            import probe  # type: ignore[import-not-found]

            value = str(probe.VALUE)
        return [str(os.getpid()), os.environ.get("CURATOR_TEST_X", ""), os.getcwd(), value]


class Greedy(Sink[int]):
    """Item ``runaway`` allocates 20 MiB every 20 ms (up to 2 GiB); item ``killed`` bumps
    the OOM counter in ``counter`` (as the kernel would), waits to be sampled, then SIGKILLs
    its own process; the others do nothing."""

    def __init__(self, runaway: int = -1, killed: int = -1, counter: str = "") -> None:
        self.runaway = runaway
        self.killed = killed
        self.counter = counter

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        list(items)
        held = []
        if index == self.runaway:
            for _ in range(100):
                held.append(b"\x01" * (20 << 20))
                time.sleep(0.02)
        if index == self.killed:
            if self.counter:
                Path(self.counter).write_text("pgfault 5\noom_kill 1\n")
            time.sleep(0.6)  # the parent samples its memory meanwhile
            os.kill(os.getpid(), signal.SIGKILL)
        return [str(index)]


greedy = Numbers(4).write(Greedy(runaway=1))


HOLD = """
import mmap, subprocess, sys, time
mib, how, seconds = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if how == "touched":
    held = b"\\x01" * (mib << 20)
elif how == "mapped":
    held = mmap.mmap(-1, mib << 20)
else:  # in a child process of its own
    held = subprocess.Popen(
        [sys.executable, "-c", sys.argv[4], str(mib), "touched", seconds, sys.argv[4]],
        stdout=subprocess.PIPE,
    )
    held.stdout.readline()
try:
    print("ready", flush=True)
except BrokenPipeError:
    pass  # whoever started it is gone: it holds on all the same
time.sleep(float(seconds))
"""
"""A process that holds ``mib`` MiB ``touched`` (resident), ``mapped`` (never touched) or in
a ``child`` of its own, says ``ready``, and waits ``seconds``."""


def hold(
    mib: int, how: str, seconds: float = 60, pid_file: str = "", **popen: object
) -> subprocess.Popen[str]:
    """Start a :data:`HOLD` process (its pid in ``pid_file``); return once it holds the memory."""
    command = [sys.executable, "-c", HOLD, str(mib), how, str(seconds), HOLD]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, **popen)  # type: ignore[call-overload]
    if pid_file:
        Path(pid_file).write_text(str(proc.pid))
    assert proc.stdout is not None
    assert proc.stdout.readline() == "ready\n"
    return proc  # type: ignore[no-any-return]


class Hoards(Sink[int]):
    """Item ``child`` starts a process holding ``mib`` MiB (its pid written to ``pid_file``)
    and waits 3 s; item ``mapped`` maps ``mib`` MiB it never touches and waits 1 s (about
    five memory samples each); the others do nothing."""

    def __init__(self, child: int = -1, mapped: int = -1, mib: int = 600, pid_file: str = ""):
        self.child = child
        self.mapped = mapped
        self.mib = mib
        self.pid_file = pid_file

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        list(items)
        if index == self.child:
            proc = hold(self.mib, "touched", 60, self.pid_file)
            time.sleep(3)  # the watchdog kills this worker and its child meanwhile
            proc.kill()
            proc.communicate()
        if index == self.mapped:
            with mmap.mmap(-1, self.mib << 20):
                time.sleep(1)
        return [str(index)]


class SpawnsAndHangs(Sink[int]):
    """Item ``at`` starts a process (its pid written to ``pid_file``), then hangs."""

    def __init__(self, at: int, pid_file: str) -> None:
        self.at = at
        self.pid_file = pid_file

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        list(items)
        if index == self.at:
            hold(1, "touched", 600, self.pid_file)
            time.sleep(600)  # only the item timeout ends it
        return [str(index)]


class CountsStarts(Sink[int]):
    """Appends a byte to the file ``tally`` as each item starts: its size counts them."""

    def __init__(self, tally: str) -> None:
        self.tally = tally

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        with open(self.tally, "ab", buffering=0) as tally:  # O_APPEND: whole bytes, any process
            tally.write(b".")
        return [str(i) for i in items]


class LoadsInWorkersOnly:
    """A result that pickles in a worker and fails to load in the run's process (a module
    the workers have and the run's process lacks, say)."""

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return (_load_in_a_worker, ())


def _load_in_a_worker() -> LoadsInWorkersOnly:
    import multiprocessing

    if multiprocessing.parent_process() is None:
        raise RuntimeError("this result loads in a worker only")
    return LoadsInWorkersOnly()


class ReturnsUnloadable(Sink[int]):
    """Item ``bad`` returns a :class:`LoadsInWorkersOnly`."""

    def __init__(self, bad: int) -> None:
        self.bad = bad

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        for _ in items:
            pass
        return [LoadsInWorkersOnly()] if index == self.bad else [str(index)]  # type: ignore[list-item]
