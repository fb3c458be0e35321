"""Worker memory: the memory limit watchdog, and what a SIGKILLed worker's outcome says."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pp_pipelines import Greedy, Hoards, SpawnsAndHangs, hold
from pp_support import subprocess_env

import curator_backend_process_pool.memory as memory
from curator import ErrorKind, Status, UsageError, run
from curator.observing.metrics import format_bytes
from curator.testing.probes import Numbers
from curator_backend_process_pool.memory import OomCounters, parse_size, rss, tree_rss


def test_a_runaway_item_fails_with_memory_limit_and_the_others_finish() -> None:
    result = run(
        Numbers(6).write(Greedy(runaway=2)),
        backend="process-pool",
        jobs=2,
        options={"memory_limit": "200MiB"},
        on_error="continue",
        reporter=None,
    )
    by_index = {o.index: o for o in result.outcomes}
    assert [i for i, o in by_index.items() if not o.ok] == [2]
    failed = by_index[2]
    assert failed.status is Status.FAILED
    assert failed.error is not None
    assert failed.error.type == "MemoryLimit"
    assert failed.error.kind is ErrorKind.MEMORY_LIMIT
    assert failed.error.message.startswith("memory limit: item 2 made its worker")
    assert "over the limit of 200 MiB per worker" in failed.error.message


def test_a_limit_below_an_idle_workers_memory_is_refused_naming_the_floor(
    tmp_path: Path,
) -> None:
    """Found by the second campaign: such a limit was taken, then random items were blamed."""
    path = tmp_path / "c.sqlite"
    with pytest.raises(UsageError) as refused:
        run(Numbers(4).write(Greedy()), backend="process-pool", jobs=2,
            options={"memory_limit": "4MiB"}, checkpoint=path, reporter=None)  # fmt: skip
    message = str(refused.value)
    floor = re.search(r"before running any item: process-[01] holds ([0-9.]+) MiB", message)
    assert floor is not None, message
    assert float(floor.group(1)) > 4
    assert "give a limit above that floor" in message
    assert not path.exists(), "the refused run left a new checkpoint behind"


def _dead(pid: int) -> bool:
    """Whether ``pid`` is gone or a zombie, waiting a while for it to go."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().rsplit(")", 1)[-1].split()[0] in "ZX":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def test_memory_of_an_items_child_processes_counts_toward_the_limit(tmp_path: Path) -> None:
    """Found by the second campaign: 1.2 GB held by an item's child passed a 300 MiB limit."""
    pid_file = tmp_path / "child.pid"
    result = run(
        Numbers(3).write(Hoards(child=1, mib=600, pid_file=str(pid_file))),
        backend="process-pool",
        jobs=2,
        options={"memory_limit": "300MiB"},
        on_error="continue",
        reporter=None,
    )
    failed = result.outcomes[1]
    assert failed.status is Status.FAILED, failed
    assert failed.error is not None
    assert failed.error.type == "MemoryLimit"
    assert "of the worker and its child processes" in failed.error.message
    assert [o.ok for o in result.outcomes] == [True, False, True]
    assert _dead(int(pid_file.read_text())), "the item's child process outlived its worker"


def test_an_item_timeout_kills_the_child_processes_of_the_item_too(tmp_path: Path) -> None:
    """Found by a review: the worker of a timed-out item was killed, its item's children not."""
    pid_file = tmp_path / "child.pid"
    result = run(
        Numbers(3).write(SpawnsAndHangs(at=1, pid_file=str(pid_file))),
        backend="process-pool",
        jobs=2,
        timeout=3,
        on_error="continue",
        reporter=None,
    )
    assert [o.status for o in result.outcomes] == [Status.OK, Status.TIMED_OUT, Status.OK]
    timed_out = result.outcomes[1].error
    assert timed_out is not None
    assert timed_out.kind is ErrorKind.TIMEOUT
    assert _dead(int(pid_file.read_text())), "the item's child process outlived its worker"


def test_memory_mapped_but_never_touched_is_not_counted() -> None:
    """The limit is on resident memory: 1 GiB of address space alone passes 300 MiB."""
    result = run(
        Numbers(2).write(Hoards(mapped=0, mib=1024)),
        backend="process-pool",
        jobs=2,
        options={"memory_limit": "300MiB"},
        reporter=None,
    )
    assert result.ok, result.failures


@contextmanager
def _holding(mib: int, how: str) -> Iterator[int]:
    with hold(mib, how, start_new_session=True) as proc:
        try:
            yield proc.pid
        finally:
            os.killpg(proc.pid, signal.SIGKILL)


def _virtual(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as statm:
        return int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def test_rss_reads_the_resident_memory_of_a_real_process() -> None:
    with _holding(200, "touched") as pid:
        size = rss(pid)
        assert size is not None
        assert 200 << 20 <= size < 300 << 20
        assert tree_rss(pid) == size  # no child processes
    with _holding(1024, "mapped") as pid:
        size = rss(pid)
        assert size is not None
        assert size < 100 << 20
        assert _virtual(pid) > 1 << 30  # what a reading of address space would see
    assert rss(pid) is None  # gone


def test_tree_rss_adds_the_memory_of_child_processes() -> None:
    with _holding(200, "child") as pid:
        own, tree = rss(pid), tree_rss(pid)
        assert own is not None
        assert tree is not None
        assert own < 100 << 20
        assert 200 << 20 <= tree - own < 300 << 20
        (child,) = memory.descendants(pid)
        assert memory._children_by_scan()[pid] == [child]  # where /proc lacks children files


def test_a_sigkill_while_the_oom_counter_rose_is_reported_as_out_of_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    counter = tmp_path / "vmstat"
    counter.write_text("pgfault 5\noom_kill 0\n")
    monkeypatch.setattr(memory, "VMSTAT", counter)  # read by the parent, which is this process
    result = run(
        Numbers(4).write(Greedy(killed=1, counter=str(counter))),
        backend="process-pool",
        jobs=2,
        on_error="continue",
        reporter=None,
    )
    crashed = result.outcomes[1]
    assert crashed.status is Status.CRASHED
    assert crashed.error is not None
    message = crashed.error.message
    assert "was killed by SIGKILL (out of memory: the kernel's OOM killer killed it (" in message
    assert f"{counter} oom_kill 0 -> 1" in message
    assert "its last known memory use (RSS) was " in message
    assert [o.status for o in result.outcomes].count(Status.OK) == 3


def test_a_sigkill_nobody_can_blame_on_memory_says_so() -> None:
    result = run(
        Numbers(2).write(Greedy(killed=0)),
        backend="process-pool",
        jobs=2,
        on_error="continue",
        reporter=None,
    )
    error = result.outcomes[0].error
    assert error is not None
    readable = any(count is not None for count in OomCounters().read())
    expected = "not by the OOM killer" if readable else "likely out of memory"
    assert f"was killed by SIGKILL ({expected}" in error.message


@pytest.mark.parametrize(
    ("given", "size"),
    [
        ("2GiB", 2 << 30),
        ("1.5 GB", 1_500_000_000),
        ("500M", 500_000_000),
        (4096, 4096),
        ("4096", 4096),
        ("0.5GiB", 1 << 29),
        (" 12 mib ", 12 << 20),
    ],
)
def test_sizes_are_read_with_units(given: object, size: int) -> None:
    assert parse_size(given) == size


@pytest.mark.parametrize(
    ("given", "says"),
    [
        ("lots", "'lots' is not a size: give bytes, or a number with a unit"),
        ("2 parsecs", "'2 parsecs' is not a size"),
        ("-1GB", "'-1GB' is not a size"),
        (0, "a memory limit must be positive, not 0"),
        ("0.5", "'0.5' is not a whole number of bytes: give a unit for a fraction (0.5GiB,"),
        ("1.5B", "'1.5B' is not a whole number of bytes"),
        ("0.0001KB", "a memory limit must be positive, not '0.0001KB' (0 bytes)"),
        ("\u0661\u0662GB", "'\u0661\u0662GB' is not a size: give bytes, or a number"),
        ("\uff11\uff12MiB", "is not a size: give bytes, or a number"),
        (True, "option 'memory_limit' of backend 'process-pool' must be int | str | None"),
    ],
)
def test_a_bad_memory_limit_is_a_clear_usage_error(given: object, says: str) -> None:
    with pytest.raises(UsageError, match=re.escape(says)):
        run(Numbers(2).write(Greedy()), backend="process-pool", jobs=2,
            options={"memory_limit": given}, reporter=None)  # fmt: skip


def test_sizes_read_as_people_write_them() -> None:
    assert format_bytes(1.25 * (1 << 30)) == "1.2 GiB"
    assert format_bytes(249 * (1 << 20)) == "249 MiB"
    assert format_bytes(512) == "512 B"


def test_the_memory_limit_flag_of_curator_run(tmp_path: Path) -> None:
    def curator_run(*flags: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "curator", "run", "pp_pipelines:greedy", *flags]
        return subprocess.run(
            command, capture_output=True, text=True, cwd=tmp_path, env=subprocess_env(),
            timeout=120,
        )  # fmt: skip

    ran = curator_run("-b", "process-pool", "-j", "2", "--memory-limit", "200MiB",
                      "--keep-going", "--reporter", "log")  # fmt: skip
    assert ran.returncode == 1, ran.stderr
    assert "item 1 failed on process-" in ran.stderr
    assert "MemoryLimit: memory limit: item 1 made its worker" in ran.stderr
    assert "3 ok, 1 failed" in ran.stderr
    resumed = curator_run("--resume", "--reporter", "log")  # the limit is remembered
    assert "memory_limit=200MiB" in resumed.stderr
    assert "MemoryLimit: memory limit: item 1" in resumed.stderr
    elsewhere = curator_run("-b", "thread-pool", "--memory-limit", "1GiB")
    assert elsewhere.returncode == 2
    assert (
        "--memory-limit is an option of backend process-pool; "
        "backend 'thread-pool' does not take it" in elsewhere.stderr
    )
    assert "Traceback" not in elsewhere.stderr


def test_the_oom_counter_file_is_the_groups_own_then_the_roots(tmp_path: Path) -> None:
    """Cgroup v2 (one ``0::`` line) and v1 (a ``memory`` controller line), as the kernel
    lists them in /proc/self/cgroup; a group whose file is not visible falls back to the
    root's; no readable membership, or no file at all, is no counter."""
    root = tmp_path / "cgroup"
    membership = tmp_path / "membership"
    own = root / "user.slice" / "job"
    own.mkdir(parents=True)
    (own / "memory.events").write_text("oom_kill 0\n")
    (root / "memory.events").write_text("oom_kill 0\n")
    membership.write_text("0::/user.slice/job\n")
    assert memory.cgroup_events(str(membership), str(root)) == str(own / "memory.events")
    membership.write_text("0::/elsewhere\n")
    assert memory.cgroup_events(str(membership), str(root)) == str(root / "memory.events")
    v1 = root / "memory" / "docker" / "abc"
    v1.mkdir(parents=True)
    (v1 / "memory.oom_control").write_text("oom_kill_disable 0\noom_kill 0\n")
    membership.write_text("12:pids:/docker/abc\n4:memory,hugetlb:/docker/abc\n0::/\n")
    found = memory.cgroup_events(str(membership), str(root))
    assert found == str(v1 / "memory.oom_control")
    assert memory.cgroup_events(str(tmp_path / "absent"), str(root)) is None
    membership.write_text("4:memory:/gone\n")
    assert memory.cgroup_events(str(membership), str(tmp_path / "empty")) is None
