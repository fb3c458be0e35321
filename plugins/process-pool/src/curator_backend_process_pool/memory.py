"""Worker memory seen from the parent: RSS samples, the memory limit, and OOM kills.

The parent samples each busy worker's resident set size a few times per
second: the worker's own (``/proc/PID/statm``, one small read) plus that of
every process it started (an item that runs a tool in a subprocess uses the
memory there; ``/proc/PID/task/*/children`` finds them). The samples give a
crashed worker's last known RSS, and with ``memory_limit`` they are a
watchdog: a worker over the limit is killed with its child processes and
its item fails with ``MemoryLimit`` instead of taking the machine down.
RSS, not ``RLIMIT_AS``:
address space counts memory never touched (numerical libraries and GPU
drivers reserve gigabytes of it), so a virtual-memory limit fails healthy
items. The watchdog sees growth between samples late: an item that
allocates faster than the sampling interval can overshoot the limit by what
it allocates in that time.

How an out-of-memory kill is told from another ``SIGKILL``: the kernel counts
its OOM kills, system-wide in ``/proc/vmstat`` (``oom_kill``) and per
cgroup (``oom_kill`` in ``memory.events`` of cgroup v2, ``memory.oom_control``
of v1). A worker that died of
``SIGKILL`` that curator did not send is reported as killed by the OOM
killer when one of those counters rose while the run went on; as "likely out
of memory" when neither can be read (no other process sends ``SIGKILL``
unasked on a typical system); and as killed by something else when the
counters are readable and did not move.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal

from curator.model.measures import format_bytes

SAMPLE_SECONDS = 0.2
"""How often busy workers' RSS is read."""

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_UNITS = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "m": 1000**2, "mb": 1000**2, "g": 1000**3, "gb": 1000**3,
    "t": 1000**4, "tb": 1000**4,
    "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40,
}  # fmt: skip
_SIZE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$", re.ASCII)
"""ASCII digits only: ``float`` would read other scripts' digits (``١٢``) as numbers."""

VMSTAT = "/proc/vmstat"
"""The system-wide OOM kill counter (``oom_kill``)."""


def parse_size(value: object) -> int:
    """Bytes from ``2GiB``, ``1.5 GB``, ``500M`` or a whole number of bytes.

    A number without a unit is bytes, as for ``docker --memory`` and
    systemd's ``MemoryMax=``, so it must be whole: ``0.5`` is refused
    rather than read as a limit of 0 bytes (``0.5GiB`` says what it means).

    Raises
    ------
    ValueError
        Naming what was given and what is accepted.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a size: give bytes, or a number with a unit")
    if isinstance(value, (int, float)):
        number, unit = float(value), ""
    else:
        found = _SIZE.match(str(value))
        if found is None or found.group(2).lower() not in _UNITS:
            raise ValueError(
                f"{value!r} is not a size: give bytes, or a number with a unit "
                "(KB, MB, GB, KiB, MiB, GiB; e.g. 2GiB)"
            )
        number, unit = float(found.group(1)), found.group(2).lower()
    if _UNITS[unit] == 1 and not number.is_integer():
        raise ValueError(
            f"{value!r} is not a whole number of bytes: give a unit for a fraction "
            f"({number:g}GiB, {number:g}MiB, ...)"
        )
    size = int(number * _UNITS[unit])
    if size <= 0:
        raise ValueError(f"a memory limit must be positive, not {value!r} ({size} bytes)")
    return size


def rss(pid: int) -> int | None:
    """The resident set size of process ``pid`` in bytes, or ``None`` if it cannot be read."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return None


def tree_rss(pid: int) -> int | None:
    """The RSS of ``pid`` and of every process it started (theirs too), in bytes.

    ``None`` if ``pid``'s own cannot be read. Pages a forked child still
    shares with its parent count in both, as ``top`` shows them.
    """
    own = rss(pid)
    if own is None:
        return None
    return own + sum(rss(child) or 0 for child in descendants(pid))


def descendants(pid: int) -> list[int]:
    """The processes ``pid`` started, and the ones they started, parents first.

    Read from ``/proc/PID/task/TID/children``; where the kernel lacks those
    files, from every process's parent in ``/proc/*/stat``. A process that
    detached itself (a daemon's double fork) belongs to ``init`` and is not found.
    """
    found: list[int] = []
    parents = [pid]
    by_parent: dict[int, list[int]] | None = None
    while parents:
        parent = parents.pop()
        children = _children(parent)
        if children is None:
            by_parent = by_parent if by_parent is not None else _children_by_scan()
            children = by_parent.get(parent, [])
        found += children
        parents += children
    return found


def _children(pid: int) -> list[int] | None:
    """``pid``'s children from its threads' ``children`` files (``None``: the kernel has none)."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    children: list[int] = []
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children", "rb") as listed:
                children += map(int, listed.read().split())
        except FileNotFoundError:
            if os.path.isdir(f"/proc/{pid}/task/{task}"):  # the thread is there, its file is not
                return None
        except (OSError, ValueError):
            continue
    return children


def _children_by_scan() -> dict[int, list[int]]:
    """Every process's children, from the parent pid in each ``/proc/PID/stat``."""
    by_parent: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as stat:
                parent = int(stat.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        by_parent.setdefault(parent, []).append(int(name))
    return by_parent


def kill_tree(pid: int) -> None:
    """``SIGKILL`` process ``pid`` and everything it started (found before it dies)."""
    for process in [*reversed(descendants(pid)), pid]:
        with contextlib.suppress(OSError):
            os.kill(process, signal.SIGKILL)


def over_before_any_item(limit: int | None) -> int | None:
    """The calling worker's memory, with its child processes, if over ``limit`` already.

    A worker checks once, before its first item: a limit below what a worker
    holds idle would only get items blamed for memory they did not use.
    """
    if limit is None:
        return None
    held = tree_rss(os.getpid())
    return held if held is not None and held > limit else None


def below_the_floor(limit: int, held: int, worker: str) -> str:
    """The refusal of a ``limit`` below what ``worker`` ``held`` before any item."""
    return (
        f"memory_limit {format_bytes(limit)} is below what a worker holds before running "
        f"any item: {worker} holds {format_bytes(held)} (RSS with its child processes, after "
        "starting, its initializer, and loading the pipeline and its stages' setup()); "
        "give a limit above that floor"
    )


def cgroup_events(
    membership: str = "/proc/self/cgroup", root: str = "/sys/fs/cgroup"
) -> str | None:
    """The file with this process's cgroup OOM kill counter, if there is one.

    Cgroup v2 ``memory.events`` or v1 ``memory.oom_control``: the process's
    own group's (``membership`` says which), else the one at the root of what
    this container sees (``root``).
    """
    # os.path, not pathlib: every run's start reads this, and pathlib costs a few ms to import.
    try:
        with open(membership, encoding="utf-8", errors="replace") as file:
            lines = file.read().splitlines()
    except OSError:
        return None
    candidates = []
    for line in lines:
        _, controllers, group = line.split(":", 2)
        group = group.lstrip("/")
        if controllers == "":
            candidates += [os.path.join(root, group, "memory.events"), f"{root}/memory.events"]
        elif "memory" in controllers.split(","):
            v1 = f"{root}/memory"
            candidates += [
                os.path.join(v1, group, "memory.oom_control"),
                f"{v1}/memory.oom_control",
            ]
    return next((path for path in candidates if os.path.isfile(path)), None)


def _counter(path: str | None, name: str) -> int | None:
    if path is None:
        return None
    try:
        with open(path, encoding="ascii", errors="replace") as lines:
            text = lines.read()
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == name:
                return int(value)
    except (OSError, ValueError):
        return None
    return None


class OomCounters:
    """The kernel's OOM kill counters this process can read, snapshot at creation."""

    def __init__(self) -> None:
        self.sources = [VMSTAT, cgroup_events()]
        self.before = self.read()

    def read(self) -> list[int | None]:
        """The counters now (``None`` where unreadable)."""
        return [_counter(path, "oom_kill") for path in self.sources]

    def verdict(self) -> str:
        """Why a worker was killed by a ``SIGKILL`` nobody in curator sent, in words."""
        now = self.read()
        rose = [
            f"{path} oom_kill {old} -> {new}"
            for path, old, new in zip(self.sources, self.before, now, strict=True)
            if old is not None and new is not None and new > old
        ]
        if rose:
            self.before = now  # the next death is judged on its own
            return "out of memory: the kernel's OOM killer killed it (" + "; ".join(rose) + ")"
        if all(count is None for count in now):
            return (
                "likely out of memory: curator did not send it, and the kernel's OOM counters "
                "cannot be read here"
            )
        return (
            "not by the OOM killer (the kernel's OOM counters did not move): another process "
            "or a person sent it"
        )


class MemoryWatch:
    """The parent's view of its workers' memory: last RSS per slot, and the limit.

    Parameters
    ----------
    limit
        Bytes of RSS a worker may use (``None``: no limit, samples only).
    """

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.last: dict[int, int] = {}
        """The last RSS read per worker slot, while its worker ran an item."""
        self.counters = OomCounters()
        self._next = 0.0

    def wait(self, now: float) -> float:
        """Seconds until the next sample is due."""
        return max(0.0, self._next - now)

    def sample(self, now: float, busy: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """Read the RSS of busy workers, ``(slot, pid)``, if a sample is due.

        Returns
        -------
        list
            ``(slot, rss)`` of the workers over the limit.
        """
        if now < self._next:
            return []
        self._next = now + SAMPLE_SECONDS
        over = []
        for slot, pid in busy:
            size = tree_rss(pid)
            if size is None:
                continue
            self.last[slot] = size
            if self.limit is not None and size > self.limit:
                over.append((slot, size))
        return over

    def forget(self, slot: int) -> None:
        """A new worker took ``slot``: its predecessor's samples no longer apply."""
        self.last.pop(slot, None)
