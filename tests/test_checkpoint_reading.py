"""Readers read what they are asked for: by column, and only the batches that hold it.

``curator logs N`` and ``status --index N`` decode one batch, ``status`` the
batches holding a failure, a dry run and a folder's listing none at all, and a
resume unpickles only the batches that hold a done item's latest record. The
memory a reading needs per item is bounded (bytes per item, not objects).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from core_support import in_process_curator, subprocess_env
from pipelines import numbers

from curator import run
from curator.checkpoint import journal
from curator.checkpoint.catalog import read
from curator.checkpoint.fingerprint import fingerprint
from curator.checkpoint.latest import read_codes
from curator.checkpoint.store import CheckpointStore, wait_closed
from curator.model.outcome import ErrorInfo, Outcome, Status

BATCHES, PER_BATCH = 30, 40
FAILING = (45, 1001)
"""Items that fail: in the second batch and in the 26th."""


def _outcome(index: int, run_number: int) -> Outcome:
    if index in FAILING:
        error = ErrorInfo("ValueError", f"item {index} fails", "Traceback ...\n")
        return Outcome(index, Status.FAILED, None, error, "main", 1.0, 2.0)
    return Outcome(index, Status.OK, [f"out-{index}-{run_number}"], None, "main", 1.0, 2.0)


def _checkpoint(path: Path, runs: int = 1) -> None:
    """``BATCHES`` journal batches of ``PER_BATCH`` items each, written by ``runs`` runs."""
    pipeline = numbers(BATCHES * PER_BATCH)
    for run_number in range(runs):
        store = CheckpointStore(path, fingerprint(pipeline), repr(pipeline), len(pipeline))
        store.start_run("sequential", 1, len(pipeline))
        for batch in range(BATCHES):
            for index in range(batch * PER_BATCH, (batch + 1) * PER_BATCH):
                store.record(_outcome(index, run_number))
            store.commit()
        store.finish_run({"ok": len(pipeline) - len(FAILING), "failed": len(FAILING)}, False)
        store.close()
        wait_closed(path)


class _Counted:
    """Counts the journal batches decoded and the outputs unpickled, in this process."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.batches = 0
        self.outputs = 0
        read_batch, load_outputs = journal.read_batch, journal.load_outputs

        def counted_batch(*args: Any) -> Any:
            self.batches += 1
            return read_batch(*args)

        def counted_outputs(*args: Any) -> Any:
            self.outputs += 1
            return load_outputs(*args)

        monkeypatch.setattr(journal, "read_batch", counted_batch)
        monkeypatch.setattr(journal, "load_outputs", counted_outputs)

    def reset(self) -> tuple[int, int]:
        counts = (self.batches, self.outputs)
        self.batches = self.outputs = 0
        return counts


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> _Counted:
    return _Counted(monkeypatch)


def test_each_reader_decodes_only_the_batches_that_hold_what_it_shows(
    tmp_path: Path,
    counted: _Counted,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    main = in_process_curator(monkeypatch)
    path = tmp_path / "c.sqlite"
    _checkpoint(path)
    counted.reset()
    for args, batches in [
        (["logs", "1001", str(path), "--json"], 1),
        (["logs", "7", str(path)], 1),
        (["status", str(path), "--index", "45", "--json"], 1),
        (["status", str(path), "--json"], 2),  # the two batches that hold a failure
        (["status", str(path), "--failed"], 2),
        (["status", str(tmp_path), "--json"], 0),
    ]:
        assert main(args) == 0, capsys.readouterr().err
        assert counted.reset() == (batches, 0), args
        shown = capsys.readouterr().out
    assert json.loads(shown)[0]["done"] == BATCHES * PER_BATCH - len(FAILING)
    latest = read_codes(path, fingerprint(numbers(BATCHES * PER_BATCH)))
    assert latest is not None
    plan = latest.plan(range(BATCHES * PER_BATCH + 5)[:-5])
    assert (plan.done, plan.failed, plan.failed_indices) == (1198, 2, list(FAILING))
    assert counted.reset() == (0, 0)


def test_logs_finds_the_latest_record_of_an_item_run_again(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    _checkpoint(path, runs=2)
    from curator.checkpoint.catalog import read_item

    stored = read_item(path, 7, "item 7")
    assert stored is not None
    assert (stored.status, stored.outputs) == ("ok", None)  # outputs are never read here
    assert read(path).counts == {"failed": 2, "ok": BATCHES * PER_BATCH - 2}


def test_a_resume_unpickles_only_the_batches_holding_a_done_items_latest_record(
    tmp_path: Path, counted: _Counted
) -> None:
    path = tmp_path / "c.sqlite"
    _checkpoint(path, runs=2)  # the second run's batches supersede the first's
    pipeline = numbers(BATCHES * PER_BATCH)
    store = CheckpointStore(path, fingerprint(pipeline), repr(pipeline), len(pipeline))
    try:
        counted.reset()
        skippable = store.latest()
        assert counted.reset() == (BATCHES, BATCHES)
        skipped, to_run = skippable.split([7, 45], set())
        outcomes = [outcome for batch in skipped for outcome in batch]
        assert [(o.index, o.status, o.value) for o in outcomes] == [
            (7, Status.SKIPPED, ["out-7-1"])
        ]
        assert to_run == [45]  # failed: it runs again
    finally:
        store.close()


READ_AND_MEASURE = """
import sys, tracemalloc
from pathlib import Path
from curator.checkpoint.catalog import read
from curator.checkpoint.latest import read_codes
from curator.checkpoint.store import CheckpointStore
reader, path, key, items = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
tracemalloc.start()
if reader == "status":
    assert read(path).done == items
elif reader == "dry run":
    latest = read_codes(path, key)
    assert latest is not None
    assert latest.plan(range(items)).done == items
else:
    store = CheckpointStore(path, key, "Pipeline(...)", items)
    try:
        skipped, to_run = store.latest().split([items - 1], set())
        assert (len(list(skipped)), to_run) == (1, [])
    finally:
        store.close()
print(tracemalloc.get_traced_memory()[1])
"""
"""The reading, measured in a process of its own: no thread a test before left (a closer,
an abandoned item) allocates into the peak."""


@pytest.mark.parametrize("reader", ["status", "dry run", "resume"])
def test_reading_a_checkpoint_costs_bytes_per_item_not_objects(tmp_path: Path, reader: str) -> None:
    path = tmp_path / "c.sqlite"
    items = 60_000  # a batch read at a time costs the peak its size: amortized over more items
    pipeline = numbers(items)
    key = fingerprint(pipeline)  # before the run: the sink keeps what it collects
    run(pipeline, checkpoint=path, reporter=None)
    wait_closed(path)
    measured = subprocess.run(
        [sys.executable, "-c", READ_AND_MEASURE, reader, str(path), key, str(items)],
        capture_output=True, text=True, env=subprocess_env(), timeout=120, check=False,
    )  # fmt: skip
    assert measured.returncode == 0, measured.stderr
    peak = int(measured.stdout.split()[-1])
    # Columns by item (9 bytes to find the latest record, 40 more for what a resume
    # reports, 8 for the reference to its output, which it holds); an object per item
    # cost 680 to 820 bytes before.
    budget = {"status": 40, "dry run": 40, "resume": 300}[reader]
    assert peak / items < budget, f"{peak / items:.0f} bytes per item"
