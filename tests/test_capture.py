"""Captured output: per item, bounded, stored, shown by reporters, read back by `curator logs`."""

from __future__ import annotations

import io
import json
import logging
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, closing, nullcontext
from pathlib import Path

import jsonschema
import pytest
from core_support import curator, subprocess_env

from curator import Captured, Pipeline, Sink, Status, Work, WorkerInfo, run
from curator.checkpoint.store import read_latest, wait_closed
from curator.model.errors import UsageError
from curator.observing import capture
from curator.observing.capture import LIMIT, acquire, release
from curator.testing.probes import Numbers, chatter, probe

SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "events.schema.json").read_text())


class Loud(Sink[int]):
    """Item ``index`` prints ``size`` characters in lines of 100, numbered."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        list(items)
        for line in range(self.size // 100):
            print(f"{line:09d}" + "x" * 90)
        return [str(index)]


def test_only_the_last_64_kib_of_an_item_are_kept_and_the_rest_is_counted() -> None:
    result = run(Numbers(2).write(Loud(200_000)), reporter=None)
    for outcome in result.outcomes:
        assert outcome.output is not None
        assert len(outcome.output.text) == LIMIT
        assert outcome.output.dropped == 200_000 - LIMIT
        assert outcome.output.text.endswith(f"{1999:09d}" + "x" * 90 + "\n")
        assert outcome.output.lines()[0] == f"[{200_000 - LIMIT} earlier characters dropped]"


@pytest.mark.parametrize(("backend", "jobs"), [("sequential", None), ("thread-pool", 3)])
def test_items_print_into_their_outcome_not_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], backend: str, jobs: int | None
) -> None:
    before = sys.stdout, sys.stderr
    result = run(
        probe(9, tmp_path, chatty=True, sleep=0.005), backend=backend, jobs=jobs, reporter=None
    )
    assert (sys.stdout, sys.stderr) == before  # the switches are gone after the run
    out, err = capsys.readouterr()
    assert "says hello" not in out
    assert "complains" not in err
    assert "logs a warning" not in err
    for outcome in result.outcomes:
        assert outcome.output is not None
        said, complained, logged = chatter(outcome.index)
        assert outcome.output.text.splitlines() == [
            said, complained, f"WARNING curator.testing.probe: {logged}"
        ]  # fmt: skip


def test_without_capture_items_print_to_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(probe(3, tmp_path, chatty=True), capture=False, reporter=None)
    assert [o.output for o in result.outcomes] == [None, None, None]
    out, err = capsys.readouterr()
    assert [line for line in out.splitlines() if "says hello" in line] == [
        chatter(i)[0] for i in range(3)
    ]
    assert "item 1 complains" in err


def test_a_logging_handler_configured_before_the_run_is_silent_for_items_only(
    tmp_path: Path,
) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("curator.testing.probe")
    logger.addHandler(handler)
    try:
        result = run(probe(4, tmp_path, chatty=True), backend="thread-pool", jobs=2, reporter=None)
        assert stream.getvalue() == ""  # not printed by the user's handler...
        for outcome in result.outcomes:  # ...but captured, once
            assert outcome.output is not None
            assert outcome.output.text.count("logs a warning") == 1
        logger.warning("after the run")
        assert stream.getvalue() == "after the run\n"  # the handler works again
    finally:
        logger.removeHandler(handler)


def test_a_warning_outside_an_item_still_reaches_stderr_while_capturing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # As outside pytest: no handler anywhere, so Python's last resort prints warnings.
    monkeypatch.setattr(logging.getLogger(), "handlers", [])
    acquire()
    try:
        logging.getLogger("curator.test.outside").warning("not an item's")
    finally:
        release()
    assert "not an item's" in capsys.readouterr().err


def test_captured_output_is_stored_in_the_checkpoint(tmp_path: Path) -> None:
    store = tmp_path / "run.sqlite"
    run(probe(4, tmp_path, chatty=True, fail=frozenset({1})), checkpoint=store,
        on_error="continue", reporter=None)  # fmt: skip
    latest = read_latest(store)
    for index, stored in latest.items():
        assert stored.output is not None
        assert chatter(index)[0] in stored.output.text
    assert latest[1].status == "failed"


def test_damaged_captured_output_in_a_checkpoint_is_a_clear_error(tmp_path: Path) -> None:
    store = tmp_path / "run.sqlite"
    run(probe(2, tmp_path, chatty=True), checkpoint=store, reporter=None)
    with closing(sqlite3.connect(store)) as db, db:
        (info,) = db.execute("SELECT info FROM journal").fetchone()
        broken = json.loads(info)
        broken["output"] = {"0": ["not", "an", "object"]}
        db.execute("UPDATE journal SET info = ?", (json.dumps(broken),))
    with pytest.raises(UsageError, match="is damaged"):
        read_latest(store)


def test_log_reporter_prefixes_each_line_with_the_item_and_worker(tmp_path: Path) -> None:
    stream = io.StringIO()
    run(probe(3, tmp_path, chatty=True), reporter="log",
        reporter_options={"log": {"stream": stream}})  # fmt: skip
    lines = stream.getvalue().splitlines()
    for index in range(3):
        said = [line for line in lines if line.endswith(chatter(index)[0])]
        assert len(said) == 1
        assert said[0].split("curator: ", 1)[1] == f"[{index} main] {chatter(index)[0]}"


@pytest.mark.parametrize("kept", [True, False], ids=["checkpoint", "no-checkpoint"])
def test_rich_reporter_shows_an_items_output_in_a_panel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kept: bool
) -> None:
    from rich.console import Console

    from curator.observing.reporters import live

    monkeypatch.setattr(live, "PANEL_SECONDS", 60.0)  # no flake on slow hosts
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=100, color_system=None)
    run(probe(5, tmp_path, chatty=True, fail=frozenset({1})), reporter="rich",
        on_error="continue", checkpoint=tmp_path / "c.sqlite" if kept else None,
        reporter_options={"rich": {"console": console, "output_lines": 2}})  # fmt: skip
    text = buffer.getvalue()
    assert "item 0 on main" in text
    assert "item 0 says hello" in text
    assert "item 0 logs a warning" not in text  # beyond output_lines...
    # ...and said so, with where the rest can be read (only a checkpoint keeps it)
    rest = ": curator logs" if kept else " (not kept: the run has no checkpoint)"
    assert f"... 2 more lines{rest}{' 0' if kept else ''}" in text
    # Items ending within PANEL_SECONDS of a panel are named in one line, not drawn;
    # failures always get their panel.
    assert "item 1 on main" in text
    assert "item 2 on main" not in text
    rest = ": curator logs INDEX" if kept else " (not kept: the run has no checkpoint)"
    assert f"output of items 2, 3, 4 not shown (too many at once){rest}" in text
    if kept:  # not in .curator/, where curator logs looks without being told
        assert str(tmp_path / "c.sqlite") in text.replace("\n", "")


def test_json_events_carry_the_output_and_match_the_schema(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    run(probe(2, tmp_path, chatty=True), reporter="json",
        reporter_options={"json": {"file": str(events)}})  # fmt: skip
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    for event in lines:
        jsonschema.validate(event, SCHEMA)
    assert lines[0]["schema"] == 4
    finishes = [e for e in lines if e["event"] == "task_finish"]
    assert [Captured.from_json(e["output"]).text.splitlines()[0] for e in finishes] == [
        chatter(e["index"])[0] for e in finishes
    ]


def test_curator_logs_prints_an_items_output_and_traceback(tmp_path: Path) -> None:
    ran = curator("run", "pipelines:chatty", "--keep-going", "--reporter", "none", cwd=tmp_path)
    assert ran.returncode == 1, ran.stderr
    shown = curator("logs", "2", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "item 2: failed, attempt 1" in shown.stdout
    assert chatter(2)[0] in shown.stdout
    assert "ValueError: probe: item 2 fails" in shown.stdout
    assert "Traceback (most recent call last)" in shown.stdout
    data = json.loads(curator("logs", "4", "--json", cwd=tmp_path).stdout)
    assert data["status"] == Status.OK.value
    assert data["output"]["text"].splitlines()[1] == chatter(4)[1]
    assert data["error"] is None
    wrong = curator("logs", "6", cwd=tmp_path)
    assert wrong.returncode == 2
    assert "item 6 is not an item of this pipeline (it has 6, 0..5)" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_curator_logs_takes_the_folder_a_run_was_given_as_its_checkpoint(tmp_path: Path) -> None:
    """``--checkpoint FOLDER`` puts the run's checkpoint in it; status took the folder,
    logs refused it ("is a folder")."""
    ran = curator("run", "pipelines:chatty", "--keep-going", "--reporter", "none",
                  "--checkpoint", "runs", cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 1, ran.stderr
    shown = curator("logs", "2", "runs", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "ValueError: probe: item 2 fails" in shown.stdout
    other = curator("run", "pipelines:chatty", "--keep-going", "--reporter", "none",
                    "--checkpoint", "runs/other.sqlite", cwd=tmp_path)  # fmt: skip
    assert other.returncode == 1, other.stderr
    two = curator("logs", "2", "runs", cwd=tmp_path)
    assert two.returncode == 2
    assert "runs is a folder of 2 checkpoints: name one of them" in two.stderr
    assert "runs/other.sqlite" in two.stderr


def test_curator_logs_without_a_checkpoint_says_what_to_do(tmp_path: Path) -> None:
    shown = curator("logs", "0", cwd=tmp_path)
    assert shown.returncode == 2
    assert "no checkpoint in .curator/" in shown.stderr


def test_curator_logs_passes_over_a_newer_file_that_is_no_checkpoint(
    tmp_path: Path,
) -> None:
    ran = curator("run", "pipelines:chatty", "--keep-going", "--reporter", "none", cwd=tmp_path)
    assert ran.returncode == 1, ran.stderr
    stray = tmp_path / ".curator" / "notes.sqlite"
    stray.write_text("not a database\n")
    later = stray.stat().st_mtime + 60
    os.utime(stray, (later, later))  # the newest file in the folder
    shown = curator("logs", "2", cwd=tmp_path)  # curator report: in the report plugin's tests
    assert shown.returncode == 0, shown.stderr
    assert (
        "warning: passed over a newer file: .curator/notes.sqlite is not a curator "
        "checkpoint (not an SQLite database); it was left untouched\n"
    ) in shown.stderr, shown.stderr
    assert "--checkpoint" not in shown.stderr  # logs has no such flag
    assert "ValueError: probe: item 2 fails" in shown.stdout
    # A newer checkpoint that cannot be read is an error, never a reason to show an older run.
    real = tmp_path / ".curator" / _only_checkpoint(tmp_path)
    wait_closed(real)
    damaged = tmp_path / ".curator" / "newer.sqlite"
    damaged.write_bytes(real.read_bytes()[: real.stat().st_size // 2])
    os.utime(damaged, (later + 60, later + 60))
    refused = curator("logs", "2", cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert "newer.sqlite" in refused.stderr
    assert "ValueError: probe" not in refused.stdout
    damaged.unlink()
    real.unlink()
    alone = curator("logs", "2", cwd=tmp_path)
    assert alone.returncode == 2
    assert alone.stderr.endswith(
        "no checkpoint in .curator/: name one (curator logs INDEX CHECKPOINT)\n"
        "  .curator/notes.sqlite is not a curator checkpoint (not an SQLite database); it was "
        "left untouched\n"
    ), alone.stderr
    assert stray.read_text() == "not a database\n"


def _only_checkpoint(folder: Path) -> str:
    found = [
        p.name
        for p in (folder / ".curator").glob("*.sqlite")
        if p.name not in ("notes.sqlite", "newer.sqlite")
    ]
    assert len(found) == 1, found
    return found[0]


def test_a_run_without_capture_is_remembered_and_logs_say_so(tmp_path: Path) -> None:
    ran = curator(
        "run", "pipelines:chatty", "--keep-going", "--no-capture", "--reporter", "none",
        cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 1
    assert "item 0 says hello" in ran.stdout  # not captured: printed
    shown = curator("logs", "0", cwd=tmp_path)
    assert "printed nothing, or the run did not capture output" in shown.stdout


def test_capture_survives_a_stream_swapped_while_it_is_installed(tmp_path: Path) -> None:
    # As after a thread-pool run whose hung thread was abandoned (its teardown never
    # came): capture stays installed, and a harness then swaps sys.stdout.
    acquire()
    swapped = io.StringIO()
    before = sys.stdout
    sys.stdout = swapped
    try:
        result = run(probe(3, tmp_path, chatty=True), backend="thread-pool", jobs=2, reporter=None)
        for outcome in result.outcomes:
            assert outcome.output is not None
            assert chatter(outcome.index)[0] in outcome.output.text
        print("not an item's")
        assert swapped.getvalue() == "not an item's\n"
    finally:
        sys.stdout = before
        release()


class Lines(Sink[int]):
    """Writes its lines with ``writelines``, as code that formats a block at once does."""

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        list(items)
        sys.stdout.writelines([f"item {index}\n", "second line\n"])
        return [str(index)]


def test_writelines_is_captured_like_write(capsys: pytest.CaptureFixture[str]) -> None:
    result = run(Numbers(3).write(Lines()), backend="thread-pool", jobs=2, reporter=None)
    assert "second line" not in capsys.readouterr().out
    for outcome in result.outcomes:
        assert outcome.output is not None
        assert outcome.output.text == f"item {outcome.index}\nsecond line\n"


def test_an_item_that_runs_a_pipeline_keeps_its_own_output_and_the_inner_items_theirs() -> None:
    """A stage may run a pipeline in its own thread: each item, outer and inner, gets its text."""
    inner_outputs: list[object] = []

    class Inner(Sink[int]):
        def __call__(self, items: Iterator[int], index: int) -> list[str]:
            for _ in items:
                pass
            print(f"inner item {index}")
            return []

    class Outer(Sink[int]):
        def __call__(self, items: Iterator[int], index: int) -> list[str]:
            for _ in items:
                pass
            print(f"outer {index} before")
            inner = run(Pipeline(Numbers(2)).write(Inner()), reporter=None)
            inner_outputs.append([o.output.text if o.output else None for o in inner.outcomes])
            print(f"outer {index} after")
            return []

    result = run(Pipeline(Numbers(2)).write(Outer()), reporter=None)
    assert [o.output.text if o.output else None for o in result.outcomes] == [
        f"outer {i} before\nouter {i} after\n" for i in range(2)
    ]
    assert inner_outputs == [["inner item 0\n", "inner item 1\n"]] * 2


def test_a_handler_the_first_item_adds_keeps_printing_and_its_records_are_captured() -> None:
    # In a fresh process (a worker) whose first item imports logging, adds a handler
    # and logs below the last resort's level: every record is captured and printed.
    code = textwrap.dedent(
        """
        import io
        from curator.observing import capture
        capture.acquire()
        stream = io.StringIO()
        def item(body):
            buffer = capture.begin()
            try:
                body()
            finally:
                out = capture.end(buffer)
            return None if out is None else out.text
        def first():
            import logging
            logger = logging.getLogger("job")
            logger.addHandler(logging.StreamHandler(stream))
            logger.setLevel(logging.INFO)
            logger.info("info 0")
        print(repr(item(first)))
        import logging
        print(repr(item(lambda: logging.getLogger("job").warning("warn 1"))))
        capture.release()
        print(repr(stream.getvalue()))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env()
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        repr("INFO job: info 0\n"),
        repr("WARNING job: warn 1\n"),
        repr("info 0\nwarn 1\n"),
    ]


class Says(Sink[int]):
    """Prints ``item INDEX``; item ``swap_at`` also puts ``replacement`` in place of stdout."""

    def __init__(self, swap_at: int = -1, replacement: io.StringIO | None = None) -> None:
        self.swap_at = swap_at
        self.replacement = replacement

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        list(items)
        if index == self.swap_at:
            sys.stdout = self.replacement  # type: ignore[assignment]
        print(f"item {index}")
        return []


def set_up(work: Work) -> None:
    work.setup(WorkerInfo(0, "test", 1))


def each_way(work: Work, in_a_row: bool) -> AbstractContextManager[object]:
    """Items one by one, or in the block a worker's chunk loop runs them in."""
    return work.in_a_row() if in_a_row else nullcontext()


WAYS = pytest.mark.parametrize("in_a_row", [False, True], ids=["one-by-one", "in-a-row"])


def outputs(work: Work, indices: Iterable[int], in_a_row: bool = False) -> list[str | None]:
    """Run ``indices`` with ``run_index``, one way or the other: what each item printed."""
    texts = []
    with each_way(work, in_a_row):
        for index in indices:
            work.run_index(index, 0.0)
            texts.append(work.captured.text if work.captured else None)
    return texts


# Without metrics every plain item takes run_index's shortest way in a row (with them,
# only those the meter samples out); one by one, each opens and closes its own buffer.


def test_run_index_item_after_item_keeps_each_items_output_and_nothing_between(
    capsys: pytest.CaptureFixture[str],
) -> None:
    work = Work(Pipeline(Numbers(50)).write(Says()), metrics=False)
    set_up(work)
    try:
        texts = []
        for index in range(50):
            work.run_index(index, 0.0)
            texts.append(work.captured.text if work.captured else None)
            print(f"between {index}")  # the caller's own, not the next item's
    finally:
        work.teardown()
    assert texts == [f"item {i}\n" for i in range(50)]
    assert capsys.readouterr().out == "".join(f"between {i}\n" for i in range(50))


@pytest.mark.parametrize("metrics", [False, True])
def test_in_a_row_keeps_each_items_output_and_writes_what_follows_the_last(
    capsys: pytest.CaptureFixture[str], metrics: bool
) -> None:
    """What a process pool's worker does: items one after another in one thread."""
    work = Work(Pipeline(Numbers(300)).write(Says()), metrics=metrics)
    set_up(work)
    try:
        texts = []
        with work.in_a_row():
            for index in range(300):
                work.run_index(index, 0.0)
                texts.append(work.captured.text if work.captured else None)
            print("after the last item", file=sys.stderr)
        print("after the block", file=sys.stderr)
    finally:
        work.teardown()
    assert texts == [f"item {i}\n" for i in range(300)]
    # Written in the block after the last item: no item's, and not lost.
    assert capsys.readouterr().err == "after the last item\nafter the block\n"


def test_in_a_row_opens_the_buffer_once_for_all_items(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[object] = []
    begin = capture.begin

    def counting_begin() -> capture.Buffer:
        buffer = begin()
        opened.append(buffer)
        return buffer

    monkeypatch.setattr(capture, "begin", counting_begin)
    work = Work(Pipeline(Numbers(100)).write(Says()), metrics=False)
    set_up(work)
    try:
        with work.in_a_row():
            for index in range(100):
                work.run_index(index, 0.0)
        assert len(opened) == 1
        for index in range(100):
            work.run_index(index, 0.0)
        assert len(opened) == 101
    finally:
        work.teardown()


def test_in_a_row_of_a_failing_item_keeps_its_output_with_its_error() -> None:
    class Fails(Sink[int]):
        def __call__(self, items: Iterator[int], index: int) -> list[str]:
            list(items)
            print(f"about to fail {index}")
            if index % 2:
                raise ValueError(f"odd {index}")
            return []

    work = Work(Pipeline(Numbers(6)).write(Fails()), metrics=False)
    set_up(work)
    try:
        ended = []
        with work.in_a_row():
            for index in range(6):
                ok, _, _ = work.run_index(index, 0.0)
                ended.append((ok, work.captured.text if work.captured else None))
    finally:
        work.teardown()
    assert ended == [(i % 2 == 0, f"about to fail {i}\n") for i in range(6)]


def test_run_index_captures_again_after_an_item_replaced_stdout() -> None:
    replacement = io.StringIO()
    before = sys.stdout
    work = Work(Pipeline(Numbers(6)).write(Says(swap_at=2, replacement=replacement)), metrics=False)
    set_up(work)
    try:
        texts = outputs(work, range(6))
        print("after the items")
    finally:
        work.teardown()
        sys.stdout = before
    # Item 2 printed into what it put in place; the next items are captured again,
    # and text outside items reaches the replacement.
    assert texts == ["item 0\n", "item 1\n", None, "item 3\n", "item 4\n", "item 5\n"]
    assert replacement.getvalue() == "item 2\nafter the items\n"


def test_in_a_row_captures_again_at_the_next_block_after_an_item_replaced_stdout() -> None:
    replacement = io.StringIO()
    before = sys.stdout
    work = Work(Pipeline(Numbers(6)).write(Says(swap_at=1, replacement=replacement)), metrics=False)
    set_up(work)
    try:
        texts = outputs(work, (0, 1, 2), in_a_row=True) + outputs(work, (3, 4, 5), in_a_row=True)
    finally:
        work.teardown()
        sys.stdout = before
    # The rest of the block wrote where item 1 pointed stdout (as documented); the next
    # block puts the switch back in front.
    assert texts == ["item 0\n", None, None, "item 3\n", "item 4\n", "item 5\n"]
    assert replacement.getvalue() == "item 1\nitem 2\n"


@WAYS
def test_run_index_in_another_thread_than_setup_captures_that_threads_items(
    in_a_row: bool,
) -> None:
    work = Work(Pipeline(Numbers(4)).write(Says()), metrics=False)
    set_up(work)
    texts: list[str | None] = []

    def items() -> None:
        texts.extend(outputs(work, range(4), in_a_row))

    try:
        thread = threading.Thread(target=items)
        thread.start()
        thread.join()
    finally:
        work.teardown()
    assert texts == [f"item {i}\n" for i in range(4)]


@WAYS
def test_run_index_item_that_runs_a_pipeline_keeps_its_own_output(in_a_row: bool) -> None:
    class Outer(Sink[int]):
        def __call__(self, items: Iterator[int], index: int) -> list[str]:
            list(items)
            print(f"outer {index}")
            inner = run(Pipeline(Numbers(2)).write(Says()), reporter=None)
            assert [o.output.text if o.output else None for o in inner.outcomes] == [
                "item 0\n",
                "item 1\n",
            ]
            print(f"outer {index} again")
            return []

    work = Work(Pipeline(Numbers(3)).write(Outer()), metrics=False)
    set_up(work)
    try:
        texts = outputs(work, range(3), in_a_row)
    finally:
        work.teardown()
    assert texts == [f"outer {i}\nouter {i} again\n" for i in range(3)]


@WAYS
def test_run_index_inside_an_item_of_run_index_keeps_both_outputs_apart(in_a_row: bool) -> None:
    """A stage that runs another work's items itself, in the thread of the outer item."""
    inner_texts: list[str | None] = []

    class Outer(Sink[int]):
        def __call__(self, items: Iterator[int], index: int) -> list[str]:
            list(items)
            print(f"outer {index}")
            inner = Work(Pipeline(Numbers(2)).write(Says()), metrics=False)
            set_up(inner)
            try:
                inner_texts.extend(outputs(inner, range(2), in_a_row))
            finally:
                inner.teardown()
            print(f"outer {index} again")
            return []

    work = Work(Pipeline(Numbers(2)).write(Outer()), metrics=False)
    set_up(work)
    try:
        texts = outputs(work, range(2), in_a_row)
    finally:
        work.teardown()
    assert texts == [f"outer {i}\nouter {i} again\n" for i in range(2)]
    assert inner_texts == ["item 0\n", "item 1\n"] * 2


class ClosesItsStreams(Sink[int]):
    """Writes through ``with sys.stdout as out:`` (a CLI idiom), then closes stderr."""

    def __call__(self, items: Iterable[int], index: int) -> list[str]:
        with sys.stdout as out:
            for item in items:
                out.write(f"item {item}\n")
        sys.stderr.write("bye\n")
        sys.stderr.close()
        return []


@pytest.mark.parametrize("backend", ["sequential", "thread-pool"])
def test_an_item_that_closes_its_streams_closes_only_its_captured_ones(
    backend: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run(Pipeline(Numbers(4)).write(ClosesItsStreams()), backend=backend, reporter=None)
    assert [o.status for o in result.outcomes] == [Status.OK] * 4
    assert [o.output.text if o.output else None for o in result.outcomes] == [
        f"item {i}\nbye\n" for i in range(4)
    ]
    assert not sys.stdout.closed  # the run's own streams
    assert not sys.stderr.closed
    print("still open")
    assert capsys.readouterr().out == "still open\n"


class ClosesFromAThread(Sink[int]):
    """Hands its writing to a thread of its own, which closes stdout when done."""

    def __call__(self, items: Iterable[int], index: int) -> list[str]:
        def write() -> None:
            with sys.stdout as out:
                out.write("".join(f"{item}\n" for item in items))

        helper = threading.Thread(target=write)
        helper.start()
        helper.join()
        return []


def test_a_thread_an_item_starts_cannot_close_the_runs_stdout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    result = run(Pipeline(Numbers(3)).write(ClosesFromAThread()), reporter=None)
    assert result.ok
    assert not sys.stdout.closed
    print("still open")
    assert capsys.readouterr().out.endswith("still open\n")  # the thread's text went through


TOUCHES_THE_PROCESS_STDOUT = """
import sys
from curator import Pipeline

class Writer:  # no io stream: write and flush only
    def write(self, text):
        return len(text)

    def flush(self):
        pass

class Touches:
    def __len__(self):
        return 3

    def __getitem__(self, index):
        if index == 1:
            {what}  # without capture: the command's own stream
        return [index]

pipeline = Pipeline(Touches()).write(lambda items, index: [])
"""


@pytest.mark.parametrize("what", ["sys.stdout.close()", "sys.stdout = Writer()"])
@pytest.mark.parametrize("backend", ["sequential", "thread-pool"])
def test_without_capture_an_item_closing_or_replacing_stdout_leaves_the_json_whole(
    tmp_path: Path, backend: str, what: str
) -> None:
    (tmp_path / "touches.py").write_text(TOUCHES_THE_PROCESS_STDOUT.replace("{what}", what))
    ran = curator(
        "run", "touches:pipeline", "--no-capture", "-b", backend, "--json", cwd=tmp_path
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["ok"] == 3
    assert "internal error" not in ran.stderr


class ChecksItsStreams(Sink[int]):
    """What code that checks its streams' types sees while an item runs."""

    def __call__(self, items: Iterable[int], index: int) -> list[tuple[bool, bool]]:
        list(items)
        return [(isinstance(sys.stdout, io.TextIOBase), isinstance(sys.stderr, io.IOBase))]


@pytest.mark.parametrize("backend", ["sequential", "thread-pool"])
def test_a_captured_text_stream_is_a_text_stream_to_isinstance(backend: str) -> None:
    assert isinstance(sys.stdout, io.TextIOBase)  # what pytest gives the run
    assert isinstance(sys.stderr, io.TextIOBase)
    result = run(Pipeline(Numbers(2)).write(ChecksItsStreams()), backend=backend, reporter=None)
    assert result.outputs == [[(True, True)]] * 2


class _Writer:
    """A stand-in for stdout that is no io stream: write and flush only."""

    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def test_capture_in_front_of_a_writer_that_is_no_stream_claims_no_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writer = _Writer()
    monkeypatch.setattr(sys, "stdout", writer)
    acquire()
    try:
        switched = sys.stdout
        assert switched is not writer  # capture put its switch in front
        assert not isinstance(switched, io.TextIOBase)
    finally:
        release()
    assert sys.stdout is writer
