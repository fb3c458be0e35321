"""Pipelines the conformance kit runs: module-level, picklable, observable from outside.

Every execution of an item leaves a small file in a folder, so tests can count
executions and measure concurrency whatever the backend (threads, processes,
other machines sharing the folder).
"""

from __future__ import annotations

import ctypes
import json
import logging
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn

from curator.backends.lifecycle import WorkerInfo
from curator.examples.snapshots import Moments, combine, welford
from curator.model.pipeline import Filter, Pipeline, Sink, Source
from curator.testing.limits import DEFAULT_LIMITS

MEET_SECONDS = DEFAULT_LIMITS.meet
EMPTY: Moments = (0, 0.0, 0.0, math.inf, -math.inf)
"""Moments of no value."""


Crash = Literal["exit", "kill", "segfault"]

kit_process: int | None = None
"""The process a conformance check runs in, while it runs (the kit sets it): a probe
item asked to crash there refuses, with a message, rather than end the test session."""


def crash(how: Crash, exit_code: int = 7) -> NoReturn:
    """End this process at once, the ways real workers die.

    ``exit``: ``os._exit(exit_code)`` (no cleanup runs); ``kill``: SIGKILL sent to
    itself; ``segfault``: a read of address 0 (SIGSEGV).
    """
    if how == "exit":
        os._exit(exit_code)
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif how == "segfault":
        ctypes.string_at(0)
    raise AssertionError(f"{how!r} did not end the process")  # pragma: no cover


class Numbers(Source[int]):
    """``count`` items; item ``i`` is the number ``i``."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Iterator[int]:
        yield index


class GroupedNumbers(Numbers):
    """``Numbers`` whose ``partition_indices`` keeps each of ``groups`` together, in its order."""

    def __init__(self, count: int, groups: list[list[int]]) -> None:
        super().__init__(count)
        self.groups = groups

    def partition_indices(self, indices: list[int]) -> list[list[int]]:
        """The groups, restricted to ``indices`` (physicsnemo-curator's protocol)."""
        wanted = set(indices)
        return [[i for i in group if i in wanted] for group in self.groups]


class WorkerHooks(Filter[int]):
    """A filter with per-worker ``setup``/``teardown`` that leave a file each in ``folder``.

    ``setup.<pid>.<thread>.<slot>.<jobs>.<backend>`` holds when it ran, and
    ``teardown.<pid>.<thread>`` (the setup's process and thread, wherever the
    backend calls teardown) when that ran.

    ``hang="setup"`` (or ``"teardown"``): the first worker to get there hangs
    in that hook (see :func:`hold`), the others do not.
    """

    def __init__(self, folder: str, hang: str = "") -> None:
        self.folder = folder
        self.where = ""
        self.hang = hang

    def setup(self, worker: WorkerInfo) -> None:
        """Record the worker and the time (or hang, first)."""
        if self.hang == "setup" and claim(self.folder, "hung"):
            hold(self.folder)
        self.where = f"{os.getpid()}.{threading.get_ident()}"
        name = f"setup.{self.where}.{worker.slot}.{worker.jobs}.{worker.backend}"
        _record(Path(self.folder) / name, repr(time.time()))

    def teardown(self) -> None:
        """Record the time, under the setup's process and thread (or hang, first)."""
        if self.hang == "teardown" and claim(self.folder, "hung"):
            hold(self.folder)
        _record(Path(self.folder) / f"teardown.{self.where}", repr(time.time()))

    def __call__(self, items: Iterator[int]) -> Iterator[int]:
        """Pass the items on."""
        yield from items


class LazyResource(Filter[int]):
    """A filter that opens its per-worker resource in its first item and has no ``setup``.

    The pattern for a resource that cannot be pickled: opened lazily where the
    items run, closed in ``teardown()``, which leaves it ready to open again
    (the same object may run the next round). Leaves
    ``opened.<pid>.<thread>.<n>`` in ``folder`` at its first item and
    ``teardown.<pid>.<thread>.<n>`` (the same process and thread) when torn
    down, a file per call.
    """

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.where = ""

    def __call__(self, items: Iterator[int]) -> Iterator[int]:
        """Open (record) at the first item; pass the items on."""
        if not self.where:
            self.where = f"{os.getpid()}.{threading.get_ident()}"
            _record(Path(self.folder) / f"opened.{self.where}.{time.time_ns()}", repr(time.time()))
        yield from items

    def teardown(self) -> None:
        """Record the time, under the process and thread that opened it; be ready to reopen."""
        where = self.where or f"{os.getpid()}.{threading.get_ident()}"
        _record(Path(self.folder) / f"teardown.{where}.{time.time_ns()}", repr(time.time()))
        self.where = ""


def local_tuple(values: tuple[int, ...]) -> tuple[int, ...]:
    """``values`` as a tuple of a class defined in this function.

    Plain :mod:`pickle` refuses it wherever it is made (the class cannot be
    found by name), while cloudpickle takes it by value: what a worker could
    send home but the checkpoint cannot store.
    """

    class LocalTuple(tuple[int, ...]):
        __slots__ = ()

    return LocalTuple(values)


HOLD_SECONDS = 600.0
"""How long :func:`hold` hangs at most."""


def claim(folder: str | Path, name: str) -> bool:
    """Create ``folder/name`` if nobody did: true for the first caller only, in any process."""
    try:
        os.close(os.open(Path(folder) / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def hold(folder: str | Path) -> None:
    """Hang (in ``time.sleep``) until ``folder/release`` exists, for :data:`HOLD_SECONDS` at most.

    A test releases what it hung when it ends (:func:`release`), so that a
    thread nobody can kill does not outlive it by long.
    """
    deadline = time.monotonic() + HOLD_SECONDS
    while not (Path(folder) / "release").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def take_turn(folder: str | Path) -> int:
    """The calling item's place in starting order (0 for the first), in any process.

    It is the first ``turn.N`` in ``folder`` that the item can claim.
    """
    turn = 0
    while not claim(folder, f"turn.{turn}"):
        turn += 1
    return turn


def release(folder: str | Path) -> None:
    """End every :func:`hold` on ``folder``."""
    (Path(folder) / "release").touch()


class Tally(Filter[int]):
    """An accumulating stage (see :mod:`curator.model.state`) whose state is the items it saw.

    Its partial is the sorted tuple of indices that passed it, so a merged
    tally shows at once an item counted twice or not at all. The partial of
    an item in ``local`` is a :func:`local_tuple`.
    """

    def __init__(self, local: frozenset[int] = frozenset()) -> None:
        self.seen: tuple[int, ...] = ()
        self.local = local

    def __call__(self, items: Iterator[int]) -> Iterator[int]:
        """Count each item, then pass it on."""
        for item in items:
            self.seen = (*self.seen, item)
            yield item

    def reset(self) -> None:
        """Forget what was seen."""
        self.seen = ()

    def state(self) -> tuple[int, ...]:
        """The indices seen since the last reset."""
        if self.local and not self.local.isdisjoint(self.seen):
            return local_tuple(self.seen)
        return self.seen

    def merge(self, states: list[tuple[int, ...]]) -> tuple[int, ...]:
        """Hold (and return) every index of ``states``, sorted."""
        self.seen = tuple(sorted(i for state in states for i in state))
        return self.seen


class WelfordShards(Filter[int]):
    """The origin's shard-style statistics filter (see :mod:`curator.model.shards`), stdlib only.

    Keeps Welford moments of ``sin(i) * 10 + i / 7`` for the items it sees
    (with the example pipeline's :func:`~curator.examples.snapshots.welford`);
    ``flush()`` appends them to its output file as a JSON line and starts
    again; the static ``merge`` combines every shard's lines
    (:func:`~curator.examples.snapshots.combine`) into ``output``.
    """

    def __init__(self, output: str) -> None:
        self._output_path = output
        self.moments: Moments = EMPTY

    @staticmethod
    def value(index: int) -> float:
        """The number item ``index`` contributes."""
        return math.sin(index) * 10 + index / 7

    def __call__(self, items: Iterator[int]) -> Iterator[int]:
        """Add each item's value to the moments; pass it on."""
        for item in items:
            self.moments = welford(self.moments, [self.value(item)])
            yield item

    def reset(self) -> None:
        """Drop what a failed item gathered."""
        self.moments = EMPTY

    def flush(self) -> str | None:
        """Append the moments gathered since the last flush to the output file."""
        if not self.moments[0]:
            return None
        with open(self._output_path, "a") as out:
            out.write(json.dumps(self.moments) + "\n")
        self.moments = EMPTY
        return self._output_path

    @staticmethod
    def merge(paths: list[str], output: str) -> str:
        """Combine the moments of every shard line into ``output`` (JSON: count, mean, variance)."""
        total = EMPTY
        for path in paths:
            for line in Path(path).read_text().splitlines():
                total = combine(total, tuple(json.loads(line)))
        count, mean, m2 = total[:3]
        variance = m2 / count if count else 0.0
        Path(output).write_text(json.dumps({"count": count, "mean": mean, "variance": variance}))
        return output


@dataclass(frozen=True)
class HookCall:
    """A recorded ``setup`` (with the worker it was given) or ``teardown``."""

    where: str
    at: float
    slot: int = -1
    jobs: int = 0
    backend: str = ""


def hook_calls(folder: Path | str, kind: str) -> list[HookCall]:
    """The ``setup`` or ``teardown`` calls :class:`WorkerHooks` recorded in ``folder``.

    Also ``teardown`` and ``opened`` (its first item) of a :class:`LazyResource`.
    """
    calls = []
    for path in Path(folder).glob(f"{kind}.*"):
        parts = path.name.split(".")
        at = float(path.read_text())
        where = f"{parts[1]}/{parts[2]}"
        if kind == "setup":
            calls.append(HookCall(where, at, int(parts[3]), int(parts[4]), parts[5]))
        else:
            calls.append(HookCall(where, at))
    return calls


class Probe(Sink[int]):
    """A sink that records every execution and misbehaves on request.

    Parameters
    ----------
    folder
        Where execution records go (one file per execution).
    sleep
        Seconds each item takes.
    fail
        Indices that raise ``ValueError``.
    flaky
        Indices that raise on their first attempt only.
    crash
        Indices that end their process with ``os._exit(7)``.
    hang
        Indices that sleep for an hour.
    meet
        Each item waits (up to 20 s) until another item has started too, and
        fails if none does: proof that items run at the same time.
    interrupt, exit
        Indices that raise ``KeyboardInterrupt`` or ``SystemExit`` themselves.
    unprintable
        Indices that raise an exception whose ``str()`` raises.
    unpicklable
        Indices whose result holds a lock, which cannot be pickled.
    local
        Indices whose result is a :func:`local_tuple`: cloudpickle takes it,
        the checkpoint's pickle does not.
    chatty
        Each item writes a line to stdout, one to stderr and a logging
        warning (``item N ...``), pausing between them so that items running
        at the same time interleave (see :func:`chatter`).
    binary
        Indices that write ``bytes`` to :data:`sys.stdout`, a text stream: the
        ``TypeError`` that raises must fail only that item.
    bypass
        Indices that write to stdout past any capture: to ``sys.stdout.buffer``,
        to file descriptor 1, and from a thread they start (and wait for); each
        line says ``item N bypass: ...`` (see :func:`bypass_lines`).
    waits
        Per index, names (glob patterns) of files in ``folder`` that the item
        waits for once it started, up to :data:`MEET_SECONDS`, and fails if
        one never appears: how a test orders items across threads and
        processes (the caller, or other items' ``run.N.*`` records, make them).
    hang_after, fail_after
        Every item but the first ``N`` to start hangs (or fails), whatever
        their indices: a backend may run the indices in any order, so a check
        that needs "some items done, the rest stuck" must not name them.
        Each item takes its turn in starting order (see :func:`take_turn`).
    """

    def __init__(
        self,
        folder: str,
        *,
        sleep: float = 0.0,
        fail: frozenset[int] = frozenset(),
        flaky: frozenset[int] = frozenset(),
        crash: frozenset[int] = frozenset(),
        hang: frozenset[int] = frozenset(),
        meet: bool = False,
        interrupt: frozenset[int] = frozenset(),
        exit: frozenset[int] = frozenset(),
        unprintable: frozenset[int] = frozenset(),
        unpicklable: frozenset[int] = frozenset(),
        local: frozenset[int] = frozenset(),
        chatty: bool = False,
        binary: frozenset[int] = frozenset(),
        bypass: frozenset[int] = frozenset(),
        waits: Mapping[int, Sequence[str]] | None = None,
        hang_after: int | None = None,
        fail_after: int | None = None,
    ) -> None:
        self.folder = folder
        self.hang_after = hang_after
        self.fail_after = fail_after
        self.sleep = sleep
        self.fail = fail
        self.flaky = flaky
        self.crash = crash
        self.hang = hang
        self.meet = meet
        self.interrupt = interrupt
        self.exit = exit
        self.unprintable = unprintable
        self.unpicklable = unpicklable
        self.local = local
        self.chatty = chatty
        self.binary = binary
        self.bypass = bypass
        self.waits = {index: tuple(names) for index, names in (waits or {}).items()}

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        """Run item ``index`` as configured and record the execution."""
        values = list(items)
        folder = Path(self.folder)
        started = time.time()
        where = f"{os.getpid()}.{threading.get_ident()}.{time.monotonic_ns()}"
        (folder / f"start.{index}.{where}").touch()
        late = False
        if self.hang_after is not None or self.fail_after is not None:
            turn = take_turn(folder)
            if self.hang_after is not None and turn >= self.hang_after:
                hold(folder)
            late = self.fail_after is not None and turn >= self.fail_after
        if index in self.waits:
            _wait_for(folder, self.waits[index], index)
        if self.chatty:
            _chat(index)
        if index in self.bypass:
            _write_past_capture(index)
        if index in self.binary:
            sys.stdout.write(b"probe: bytes on a text stream\n")  # type: ignore[arg-type]
        if index in self.crash:
            if kit_process == os.getpid():
                raise RuntimeError(
                    f"item {index} was to crash its worker process, but it runs in the "
                    "test's own process: a backend that runs items here cannot declare "
                    "isolates_crashes"
                )
            crash("exit")
        if index in self.hang:
            hold(folder)  # until the check releases it (a thread cannot be killed)
        if self.meet:
            deadline = time.monotonic() + MEET_SECONDS
            while len(list(folder.glob("start.*"))) < 2:
                if time.monotonic() > deadline:
                    raise RuntimeError("no other item started while this one waited")
                time.sleep(0.005)
        if self.sleep:
            time.sleep(self.sleep)
        if index in self.flaky and not list(folder.glob(f"flaked.{index}")):
            (folder / f"flaked.{index}").touch()
            raise ValueError(f"probe: flaky item {index} fails on its first attempt")
        if index in self.fail or late:
            raise ValueError(f"probe: item {index} fails")
        if index in self.interrupt:
            raise KeyboardInterrupt(f"probe: item {index} raises KeyboardInterrupt")
        if index in self.exit:
            raise SystemExit(f"probe: item {index} calls sys.exit")
        if index in self.unprintable:
            raise Unprintable
        _record(folder / f"run.{index}.{where}", f"{started} {time.time()}")
        if index in self.unpicklable:
            return [threading.Lock()]  # type: ignore[list-item]
        if index in self.local:
            return [local_tuple((index,))]  # type: ignore[list-item]
        return [f"out-{index}"] + [str(v) for v in values]


def chatter(index: int) -> list[str]:
    """The lines a ``chatty`` probe item writes, in order."""
    return [f"item {index} says hello", f"item {index} complains", f"item {index} logs a warning"]


def _chat(index: int) -> None:
    said, complained, logged = chatter(index)
    print(said)
    time.sleep(0.002)
    print(complained, file=sys.stderr)
    time.sleep(0.002)
    logging.getLogger("curator.testing.probe").warning(logged)


def _wait_for(folder: Path, names: Sequence[str], index: int) -> None:
    deadline = time.monotonic() + MEET_SECONDS
    for name in names:
        while not any(folder.glob(name)):
            if time.monotonic() > deadline:
                raise RuntimeError(f"probe: item {index} waited in vain for {name!r}")
            time.sleep(0.002)


def bypass_lines(index: int) -> list[str]:
    """The lines a ``bypass`` probe item writes past any capture, in order."""
    return [f"item {index} bypass: {way}" for way in ("sys.stdout.buffer", "fd 1", "thread")]


def _write_past_capture(index: int) -> None:
    through_buffer, through_fd, from_thread = (line + "\n" for line in bypass_lines(index))
    sys.stdout.buffer.write(through_buffer.encode())
    sys.stdout.buffer.flush()
    os.write(1, through_fd.encode())
    # Not the item's thread: capture passes its text to the stream it replaced.
    thread = threading.Thread(target=print, args=(from_thread,), kwargs={"end": "", "flush": True})
    thread.start()
    thread.join()


class Unprintable(Exception):
    """An exception whose ``str()`` raises, as badly written exceptions do."""

    def __str__(self) -> str:
        raise RuntimeError("this exception cannot be printed")


def probe(
    count: int,
    folder: Path | str,
    groups: list[list[int]] | None = None,
    lifecycle: bool = False,
    tally: Tally | None = None,
    hang_hook: str = "",
    shards: Filter[int] | None = None,
    lazy_teardown: bool = False,
    **behaviour: object,
) -> Pipeline[int]:
    """``Numbers(count)`` written into a :class:`Probe`.

    ``groups`` are kept together; ``lifecycle`` puts a :class:`WorkerHooks` in
    between (``hang_hook``: one worker hangs in that hook), ``lazy_teardown`` a
    :class:`LazyResource` (``teardown`` without ``setup``), ``tally`` an
    accumulating :class:`Tally` (before the sink, so a failing item has been
    counted by the time it fails), ``shards`` a shard-writing stage (say a
    :class:`~curator.testing.shard_rows.ShardRows`) after it.
    """
    source = Numbers(count) if groups is None else GroupedNumbers(count, groups)
    pipeline = Pipeline(source)
    if lifecycle or hang_hook:
        pipeline = pipeline.filter(WorkerHooks(str(folder), hang_hook))
    if lazy_teardown:
        pipeline = pipeline.filter(LazyResource(str(folder)))
    if tally is not None:
        pipeline = pipeline.filter(tally)
    if shards is not None:
        pipeline = pipeline.filter(shards)
    return pipeline.write(Probe(str(folder), **behaviour))  # type: ignore[arg-type]


def pipeline_file(count: int) -> str:
    """The source of a pipeline file for ``curator run path/to/file.py:pipeline``.

    Its source, sink and the dataclass ``Converted`` of its results are its
    own, so a worker can only have them if they travel by value (or the
    worker imports the file).
    """
    return f"""
from dataclasses import dataclass

from curator import Sink, Source


@dataclass
class Converted:
    index: int
    square: int


class Numbers(Source):
    def __len__(self):
        return {count}

    def __getitem__(self, index):
        yield index


class Convert(Sink):
    def __call__(self, items, index):
        return [Converted(i, i * i) for i in items]


pipeline = Numbers().write(Convert())
"""


def _record(path: Path, text: str) -> None:
    """Write a record whole or not at all: readers poll the folder while items run.

    The text goes to a hidden name first (no reader's pattern matches it) and is
    renamed into place, so a reader never finds a record still empty.
    """
    hidden = path.with_name(f".{path.name}.part")
    hidden.write_text(text)
    os.replace(hidden, path)


@dataclass(frozen=True)
class Execution:
    """One completed execution of an item."""

    index: int
    where: str
    started: float
    finished: float


def executions(folder: Path | str) -> list[Execution]:
    """Every completed execution recorded in ``folder``."""
    found = []
    for path in Path(folder).glob("run.*"):
        _, index, pid, thread, _ = path.name.split(".")
        started, finished = (float(x) for x in path.read_text().split())
        found.append(Execution(int(index), f"{pid}/{thread}", started, finished))
    return found


def settled(folder: Path | str, quiet: float = 0.5, patience: float = 20.0) -> set[int]:
    """The indices whose execution completed, once none has for ``quiet`` seconds.

    For a run the check holds back (a stream whose consumer does not take its
    outcomes): what finished by then is what the run must record. Waits
    ``patience`` seconds at most.
    """

    def completed() -> set[int]:
        return {execution.index for execution in executions(folder)}

    seen, start = completed(), time.monotonic()
    since = start
    while time.monotonic() - since < quiet and time.monotonic() - start < patience:
        time.sleep(0.05)
        now = completed()
        if now != seen:
            seen, since = now, time.monotonic()
    return seen


def started(folder: Path | str) -> list[int]:
    """The indices whose execution started (also those that crashed or hung)."""
    return [int(p.name.split(".")[1]) for p in Path(folder).glob("start.*")]


def peak_concurrency(runs: list[Execution]) -> int:
    """The largest number of executions that overlapped in time."""
    edges = sorted([(r.started, 1) for r in runs] + [(r.finished, -1) for r in runs])
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak
