"""A scheduler the run cannot use is a usage error, at once or after a bounded wait.

A malformed address is refused with the options, before anything starts; a
scheduler file is waited for as long as an unreachable scheduler is tried
(option ``connect_timeout``, ``CONNECT_SECONDS`` by default), and one that is
no scheduler file is named as such.
Through the API (a :class:`curator.UsageError`) and the CLI (exit 2, no traceback).
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import dask.config as dask_config
import distributed
import pytest
from conftest import io_loops

import curator_backend_dask.connection as connection
from curator import UsageError, run
from curator.testing.probes import pipeline_file, probe
from curator.testing.processes import child_env
from curator.testing.waiting import wait_until

HERE = Path(__file__).parent


def dask(tmp_path: Path, **options: object) -> object:
    return run(probe(2, tmp_path), backend="dask", jobs=2, reporter=None, options=options)


MALFORMED = [
    ("nonsense", "it has no port number"),
    ("tcp://scheduler", "it has no port number"),
    ("127.0.0.1:8786x", "its port '8786x' is not a number from 1 to 65535"),
    ("tcp://10.0.0.5:99999", "its port '99999' is not a number from 1 to 65535"),
    ("::1:8786", "write an IPv6 host in brackets"),
    ("tcp://[::1]", "it has no port number"),
    ("", "it is empty"),
]


@pytest.mark.parametrize(("address", "reason"), MALFORMED)
def test_a_malformed_address_is_refused_with_the_options(
    address: str, reason: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    with pytest.raises(UsageError) as info:
        dask(tmp_path, address=address)
    assert f"address {address!r} is not a scheduler address: {reason}" in str(info.value)
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1:8786",
        "tcp://127.0.0.1:8786",
        "tcp://[::1]:8786",
        "[fe80::1]:8786",
        "tls://scheduler.example.org:8786",
        "ws://scheduler:80",
        "ucx://10.0.0.5:13337",  # transports not addressed as host:port are Dask's to judge
        "inproc://10.0.0.5/1234/1",
    ],
)
def test_well_formed_addresses_pass_the_check(address: str) -> None:
    assert connection.address_problem(address) is None


def test_an_address_dask_rejects_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    # Well formed for the check, but no transport Dask knows: Dask's own ValueError.
    with pytest.raises(UsageError) as info:
        dask(tmp_path, address="http://127.0.0.1:8786")
    message = str(info.value)
    assert "option address='http://127.0.0.1:8786' is not a Dask scheduler address" in message
    assert "unknown address scheme 'http'" in message


def test_an_empty_scheduler_file_option_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="scheduler_file is empty"):
        dask(tmp_path, scheduler_file="")


def test_a_missing_scheduler_file_is_waited_for_a_bounded_time(tmp_path: Path) -> None:
    missing = tmp_path / "scheduler.json"
    started = time.monotonic()
    with pytest.raises(UsageError) as info:
        dask(tmp_path, scheduler_file=str(missing), connect_timeout=1.5)
    waited = time.monotonic() - started
    assert str(info.value) == (
        f"scheduler file {missing} does not exist (waited 1.5 s for a scheduler to write it; "
        "option connect_timeout waits longer)"
    )
    assert 1.5 <= waited < 10


def test_a_scheduler_file_that_appears_within_connect_timeout_is_used(
    tmp_path: Path, cluster: Path
) -> None:
    """A scheduler started as a batch job writes its file late: connect_timeout waits for it."""
    late = tmp_path / "late.json"
    writer = threading.Timer(2.0, lambda: late.write_bytes(cluster.read_bytes()))
    writer.start()
    try:
        result = dask(tmp_path, scheduler_file=str(late), connect_timeout=30)
    finally:
        writer.cancel()
    assert result.ok  # type: ignore[attr-defined]


@pytest.mark.parametrize("seconds", [0, -1, "soon"])
def test_a_connect_timeout_that_is_no_positive_number_is_refused(
    seconds: object, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match="connect_timeout"):
        dask(tmp_path, address="tcp://127.0.0.1:8786", connect_timeout=seconds)


def test_a_scheduler_file_in_a_missing_folder_is_an_error_at_once(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "scheduler.json"
    started = time.monotonic()
    with pytest.raises(UsageError) as info:
        dask(tmp_path, scheduler_file=str(missing))
    assert str(info.value) == (
        f"scheduler file {missing} does not exist, nor does its folder {missing.parent}"
    )
    assert time.monotonic() - started < 5


def test_a_run_stopped_while_it_waits_for_the_scheduler_file_returns(tmp_path: Path) -> None:
    missing = str(tmp_path / "scheduler.json")
    started = time.monotonic()
    client = connection.connect(distributed.Client, None, missing, lambda: True)
    assert client is None
    assert time.monotonic() - started < 1


NOT_SCHEDULER_FILES = [
    ("{}", "it has no 'address'"),
    ("", "it is empty"),
    ("garbage\n", "not JSON"),
    ('{"address": ', "not JSON"),  # half-written, and never finished
    ("[1, 2]", "JSON, but a list, not an object with an 'address'"),
    ('{"address": 8786}', "its address 8786 is not a string"),
    (
        '{"address": "tcp://10.0.0.5"}',
        "its address 'tcp://10.0.0.5' is not a scheduler address: it has no port number",
    ),
]


@pytest.mark.parametrize(("content", "reason"), NOT_SCHEDULER_FILES)
def test_a_file_that_is_no_scheduler_file_is_named(
    content: str, reason: str, tmp_path: Path
) -> None:
    path = tmp_path / "scheduler.json"
    path.write_text(content)
    started = time.monotonic()
    with pytest.raises(UsageError) as info:
        dask(tmp_path, scheduler_file=str(path))
    expected = f"scheduler file {path} is not a Dask scheduler file ({reason}"
    assert str(info.value).startswith(expected)
    assert time.monotonic() - started < 5


def test_a_scheduler_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        dask(tmp_path, scheduler_file=str(tmp_path))
    assert str(info.value) == f"cannot read the scheduler file {tmp_path} (Is a directory)"


def test_an_unreachable_scheduler_of_a_scheduler_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "scheduler.json"
    path.write_text('{"address": "tcp://127.0.0.1:9"}')
    with pytest.raises(UsageError) as info:
        dask(tmp_path, scheduler_file=str(path), connect_timeout=1)
    assert str(info.value).startswith(
        f"cannot reach the Dask scheduler at tcp://127.0.0.1:9 (from the scheduler file {path}) "
        "within 1 s: "
    )


@pytest.mark.parametrize(
    ("address", "error"),
    [
        ("tcp://127.0.0.1:9", "cannot reach the Dask scheduler at tcp://127.0.0.1:9 within 1 s"),
        ("http://127.0.0.1:8786", "option address='http://127.0.0.1:8786' is not a Dask"),
    ],
)
def test_a_client_that_cannot_connect_leaves_no_io_loop_behind(
    address: str, error: str, tmp_path: Path
) -> None:
    """Its IO loop ran on, and the garbage collector closed the client at a random moment.

    Collected in a thread starting another client, that close waited on distributed's
    loop lock, which the start held: the start failed after 10 s (on the new client's
    IO-loop thread), or hung for good (on the thread holding the lock).
    """
    before = io_loops()
    gc.disable()  # what is left is closed here, not by a collection that happens to run
    try:
        with pytest.raises(UsageError) as info:
            dask(tmp_path, address=address, connect_timeout=1)
        assert str(info.value).startswith(error)
        assert io_loops() - before == set()
    finally:
        gc.enable()


def test_a_local_cluster_that_fails_to_start_leaves_no_io_loop_behind(tmp_path: Path) -> None:
    """distributed stops no loop of a cluster whose scheduler fails to start.

    Its IO-loop thread ran on, until the process ended, in every process where
    a run's cluster could not start (here: a scheduler preload that is missing),
    and the command line printed it as an internal error, with a traceback.
    """
    before = io_loops()
    gc.disable()  # what is left is closed here, not by a collection that happens to run
    try:
        missing = {"distributed.scheduler.preload": ["curator_no_such_preload"]}
        with dask_config.set(missing), pytest.raises(UsageError) as info:
            dask(tmp_path)
        assert str(info.value).startswith(
            "the Dask LocalCluster of 2 workers could not start (ModuleNotFoundError: No "
            "module named 'curator_no_such_preload'); check Dask's configuration"
        )
        assert io_loops() - before == set()
    finally:
        gc.enable()


def test_a_client_whose_scheduler_is_gone_for_good_is_closed_with_its_io_loop(
    own_cluster: Path,
) -> None:
    """distributed closes such a client itself and leaves its IO loop running.

    ``close()`` then returns at once: a run that lost its scheduler left a thread
    running for good (``close_with_loop`` is what the run's end calls).
    """
    before = io_loops()
    client = connection.new_with_loop(
        distributed.Client, scheduler_file=str(own_cluster), timeout="2s"
    )
    os.kill(client.run_on_scheduler(os.getpid), signal.SIGKILL)
    wait_until(lambda: client.status == "closed", 60, "the client to give its scheduler up")
    assert io_loops() - before  # what close() alone leaves behind
    connection.close_with_loop(client)
    assert io_loops() - before == set()


def _curator_run(cwd: Path, *options: str) -> tuple[subprocess.CompletedProcess[str], float]:
    (cwd / "pl.py").write_text(pipeline_file(4))
    command = ["curator", "run", "pl.py:pipeline", "-b", "dask", "-j", "2", "--reporter", "none"]
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", *command, *options],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=child_env(HERE, *sys.path),
        timeout=60,  # the defect was a hang: the missing file was waited for forever
    )
    return done, time.monotonic() - started


@pytest.mark.parametrize(
    ("option", "content", "message"),
    [
        (
            "scheduler_file={tmp}/scheduler.json",
            None,
            "scheduler file {tmp}/scheduler.json does not exist (waited 10 s for a scheduler "
            "to write it; option connect_timeout waits longer)",
        ),
        (
            "address=nonsense",
            None,
            "address 'nonsense' is not a scheduler address: it has no port number",
        ),
        (
            "address=127.0.0.1:8786x",
            None,
            "address '127.0.0.1:8786x' is not a scheduler address: its port '8786x' is not",
        ),
        (
            "scheduler_file={tmp}/scheduler.json",
            "{}",
            "scheduler file {tmp}/scheduler.json is not a Dask scheduler file (it has no "
            "'address')",
        ),
        (
            "scheduler_file={tmp}/scheduler.json",
            "garbage",
            "scheduler file {tmp}/scheduler.json is not a Dask scheduler file (not JSON)",
        ),
    ],
    ids=["missing-file", "no-port", "bad-port", "empty-file", "garbage-file"],
)
def test_the_cli_exits_2_with_the_message(
    option: str, content: str | None, message: str, tmp_path: Path
) -> None:
    if content is not None:
        (tmp_path / "scheduler.json").write_text(content)
    done, took = _curator_run(tmp_path, "-o", option.format(tmp=tmp_path))
    assert done.returncode == 2, done.stderr
    assert message.format(tmp=tmp_path) in done.stderr
    assert "Traceback" not in done.stderr
    assert "internal error" not in done.stderr
    assert took < 45
