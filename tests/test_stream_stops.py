"""How a run ends when its consumer stops early or a hard stop reaches the consumer's code.

A stream hands its consumer control between outcomes: whatever ends the run
while the consumer's loop body runs (``break``, an exception, a second Ctrl-C,
the end of the grace period) must still record everything that finished, and
report the run as run() would.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import curator
from curator import Status, run, stream
from curator.checkpoint.catalog import read as report
from curator.testing.probes import probe, settled


def _consume_slowly(outcomes: curator.RunStream, seen: list[int]) -> None:
    with outcomes:
        for outcome in outcomes:
            seen.append(outcome.index)
            time.sleep(0.6)  # the consumer's own work


@pytest.mark.parametrize(("backend", "jobs"), [("thread-pool", 2), ("sequential", None)])
def test_a_hard_stop_in_the_loop_body_ends_the_stream_as_run_ends(
    tmp_path: Path, backend: str, jobs: int | None, default_signal_handlers: None
) -> None:
    # One Ctrl-C while the consumer works on an outcome; the grace period ends while it
    # still does, so the hard stop is raised in the loop body, not in the run's frames.
    checkpoint = tmp_path / "run.sqlite"
    items = tmp_path / "items"  # the probe's run.* records, beside no run.sqlite
    items.mkdir()
    pipeline = probe(30, items, sleep=0.05)
    outcomes = stream(
        pipeline, backend=backend, jobs=jobs, grace=0.1, checkpoint=checkpoint, reporter=None
    )
    press = threading.Timer(0.3, signal.raise_signal, (signal.SIGINT,))
    press.start()
    seen: list[int] = []
    with pytest.raises(curator.RunInterrupted) as info:
        _consume_slowly(outcomes, seen)
    press.join()
    result = info.value.result
    assert result.interrupted
    finished = settled(items)
    assert result.count(Status.OK) == len(finished)
    assert seen
    assert report(checkpoint).state == "interrupted"
    resumed = run(pipeline, checkpoint=checkpoint, resume=True, reporter=None)
    assert {o.index for o in resumed.outcomes if o.status is Status.SKIPPED} == finished


PRINTING = """
import sys, time
from curator import Sink
from curator.testing.probes import Numbers

class Chatty(Sink):
    def __call__(self, items, index):
        print(f"item {index} speaks")
        time.sleep(0.2)
        return [str(i) for i in items]

pipeline = Numbers(6).write(Chatty())
"""


def test_the_first_ctrl_c_is_told_on_stderr_even_inside_an_item_that_runs_here(
    tmp_path: Path,
) -> None:
    # On sequential the item runs in the main thread, where the signal's handler runs
    # too: its notice belongs on the terminal, not in the item's captured output.
    (tmp_path / "chatty.py").write_text(textwrap.dedent(PRINTING))
    script = textwrap.dedent(
        """
        import signal, sys, threading
        sys.path.insert(0, ".")
        import curator, chatty
        threading.Timer(0.5, signal.raise_signal, (signal.SIGINT,)).start()
        try:
            curator.run(chatty.pipeline, reporter=None)
        except curator.RunInterrupted as stop:
            for outcome in stop.result.outcomes:
                if outcome.output is not None:
                    print(repr(outcome.output.text))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert "curator: stopping: no new items" in proc.stderr
    assert "item " in proc.stdout  # the items' output was captured ...
    assert "stopping" not in proc.stdout  # ... without the run's notice in it


LEFT_OPEN = """
import curator
from curator.testing.probes import probe

outcomes = curator.stream(
    probe(12, "items", sleep=0.2), backend="thread-pool", jobs=2, checkpoint="run.sqlite",
    reporter=None,
)
for outcome in outcomes:
    print("took", outcome.index, flush=True)
    break  # never closed: the stream ends with the interpreter
"""


def test_a_stream_left_open_ends_with_the_interpreter_and_records_what_finished(
    tmp_path: Path,
) -> None:
    """The run's end ran as the interpreter shut down, where no thread can start any more:
    closing the checkpoint in a thread hung the process for good (SIGTERM too)."""
    (tmp_path / "items").mkdir()
    proc = subprocess.run(
        [sys.executable, "-c", LEFT_OPEN],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,  # the defect was a hang
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("took ")
    recorded = report(tmp_path / "run.sqlite")
    assert recorded.state == "stopped", recorded
    assert recorded.counts.get("ok", 0) >= 1, recorded.counts
