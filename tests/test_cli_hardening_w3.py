"""Command-line defects found by hand (third wave): each test fails without its fix.

1. a remembered --max-failures no longer traps ``--resume --keep-going``;
2. ``status``/``logs``/``report`` of a TARGET print only JSON with ``--json``;
3. the json reporter on stdout keeps stdout for its events;
4. suggested commands are quoted for a shell;
5. a reporter named twice is refused;
6. an empty ``--checkpoint`` is refused;
7. an option given by ``-o`` and by its flag is refused;
8. a backend's flag on a backend without that option names the flag;
9. a refused non-checkpoint leaves no lock file behind;
10. a reporter's number option refuses nan and inf;
11. ``curator logs`` says the truth about an item whose output is not kept.
"""

from __future__ import annotations

import importlib.util
import json
import shlex
import sqlite3
from pathlib import Path

import pytest
from core_support import curator, make_distribution, subprocess_env
from pipelines import numbers

from curator import UsageError, run

ODD_FAILS = """\
from curator import Sink
from curator.testing.probes import Numbers


class OddFails(Sink):
    def __call__(self, items, index):
        values = list(items)
        if index % 2:
            raise ValueError(f"odd item {index}")
        return [str(value) for value in values]


pipeline = Numbers(10).write(OddFails())
"""

CHATTY = """\
import os
import sys

print("the module prints while it is imported")
from curator import Sink
from curator.testing.probes import Numbers


class Chatty(Sink):
    def __call__(self, items, index):
        print(f"item {index} prints")
        os.write(1, b"item writes to file descriptor 1\\n")
        sys.stdout.buffer.write(b"item writes bytes to sys.stdout.buffer\\n")
        sys.stdout.flush()
        return [str(value) for value in items]


pipeline = Numbers(4).write(Chatty())
"""


def _write(folder: Path, name: str, text: str) -> str:
    (folder / name).write_text(text)
    return f"{name}:pipeline"


def _said(stderr: str, start: str) -> str:
    """The one ``curator:`` line of ``stderr`` that contains ``start``, from there on."""
    (line,) = [line for line in stderr.splitlines() if start in line]
    return line[line.index(start) + len(start) :]


def _only_json_lines(stdout: str) -> list[dict[str, object]]:
    lines = stdout.splitlines()
    assert lines, "no output"
    events = []
    for line in lines:
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"a line on stdout is not JSON: {line!r}\n{stdout}")
    return events


# -- 1. a remembered --max-failures and --resume --keep-going --------------------------


def test_resume_keep_going_after_a_max_failures_stop_runs_past_the_failures(
    tmp_path: Path,
) -> None:
    target = _write(tmp_path, "pl.py", ODD_FAILS)
    first = curator("run", target, "--max-failures", "2", "--reporter", "none", cwd=tmp_path)
    assert first.returncode == 1, first.stderr
    # What stopped the run is the budget, not the first failure.
    hint = _said(first.stderr, "curator: the run stopped ")
    assert hint.startswith("after 2 failures (the last: item 3), so 6 items never ran"), hint
    assert "first failure" not in first.stderr
    command = hint.split("to run them past failures: ", 1)[1]
    assert command == f"curator run {target} --resume --keep-going"
    again = curator(*shlex.split(command)[1:], "--json", cwd=tmp_path)
    assert again.returncode == 1, again.stderr  # the odd items still fail...
    summary = json.loads(again.stdout)
    assert summary["cancelled"] == 0, again.stderr  # ...but every item ran
    assert summary["stopped_at"] is None
    assert "curator: not reused: --max-failures 2 (--keep-going given now)" in again.stderr
    assert "resuming with the last run's settings: --max-failures" not in again.stderr
    # A budget given again with the mode stays.
    kept = curator("run", target, "--resume", "--keep-going", "--max-failures", "1", "--json",
                   cwd=tmp_path)  # fmt: skip
    assert json.loads(kept.stdout)["cancelled"] > 0, kept.stderr
    assert "not reused: --max-failures" not in kept.stderr


def test_a_stop_at_the_first_failure_still_says_so(tmp_path: Path) -> None:
    target = _write(tmp_path, "pl.py", ODD_FAILS)
    proc = curator("run", target, "--reporter", "none", cwd=tmp_path)
    assert proc.returncode == 1
    hint = _said(proc.stderr, "curator: the run stopped ")
    assert hint.startswith("at the first failure (item 1), so 8 items never ran"), hint


# -- 2. status, logs, report of a TARGET with --json -----------------------------------


READERS = {
    "status": ["status", "{target}", "--json"],
    "status --failed": ["status", "{target}", "--failed", "--json"],
    "status --index": ["status", "{target}", "--index", "1", "--json"],
    "logs": ["logs", "1", "{target}", "--json"],
    "report": ["report", "{target}", "--json"],
}


@pytest.mark.parametrize("reader", list(READERS))
def test_reading_a_checkpoint_by_target_prints_only_json(tmp_path: Path, reader: str) -> None:
    if reader == "report" and importlib.util.find_spec("curator_report") is None:
        pytest.skip("the curator-report plugin is not installed")
    target = _write(tmp_path, "noisy.py", CHATTY)
    ran = curator("run", target, "--reporter", "none", cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    args = [word.format(target=target) for word in READERS[reader]]
    proc = curator(*args, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    json.loads(proc.stdout)  # the whole of stdout is one JSON document
    assert "the module prints while it is imported" in proc.stderr


# -- 3. the json reporter on stdout ------------------------------------------------------


@pytest.mark.parametrize("capture", ["--capture", "--no-capture"])
@pytest.mark.parametrize(("backend", "jobs"), [("sequential", "1"), ("thread-pool", "2")])
def test_json_events_on_stdout_are_all_stdout_holds(
    tmp_path: Path, capture: str, backend: str, jobs: str
) -> None:
    target = _write(tmp_path, "noisy.py", CHATTY)
    proc = curator("run", target, "-b", backend, "-j", jobs, capture, "--reporter", "json",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    events = _only_json_lines(proc.stdout)
    assert [e["event"] for e in events].count("task_finish") == 4
    assert events[-1]["event"] == "run_finish"
    assert "the module prints while it is imported" in proc.stderr
    assert "item writes to file descriptor 1" in proc.stderr
    assert "item writes bytes to sys.stdout.buffer" in proc.stderr
    if capture == "--no-capture":
        assert "item 0 prints" in proc.stderr


def test_json_events_a_resume_remembers_are_all_stdout_holds(tmp_path: Path) -> None:
    target = _write(tmp_path, "noisy.py", CHATTY)
    first = curator("run", target, "--indices", "0:2", "--reporter", "json", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    _only_json_lines(first.stdout)
    resumed = curator("run", target, "--resume", "--indices", "0:4", "--no-capture",
                      cwd=tmp_path)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "--reporter json" in resumed.stderr  # taken from the checkpoint
    events = _only_json_lines(resumed.stdout)
    assert [e["status"] for e in events if e["event"] == "task_finish"].count("ok") == 2
    assert "the module prints while it is imported" in resumed.stderr
    assert "item 3 prints" in resumed.stderr


def test_json_events_to_a_file_leave_stdout_to_the_pipeline(tmp_path: Path) -> None:
    target = _write(tmp_path, "noisy.py", CHATTY)
    proc = curator("run", target, "--no-capture", "--reporter", "json", "--reporter-option",
                   "json.file=events.jsonl", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "item 0 prints" in proc.stdout  # as without a reporter on stdout
    _only_json_lines((tmp_path / "events.jsonl").read_text())


# -- 4. suggested commands are quoted ----------------------------------------------------


def test_suggested_commands_survive_a_shell_with_spaces_in_names(tmp_path: Path) -> None:
    target = _write(tmp_path, "convert files.py", ODD_FAILS)
    checkpoint = "ck pt/x y.sqlite"
    first = curator("run", target, "--checkpoint", checkpoint, "--reporter", "none",
                    cwd=tmp_path)  # fmt: skip
    assert first.returncode == 1
    resume = _said(first.stderr, "to finish the rest with the same settings: ")
    assert shlex.split(resume) == [
        "curator", "run", target, "--resume", "--checkpoint", checkpoint,
    ]  # fmt: skip
    keep_going = _said(first.stderr, "to run them past failures: ")
    assert shlex.split(keep_going) == [
        "curator", "run", target, "--resume", "--checkpoint", checkpoint, "--keep-going",
    ]  # fmt: skip
    pasted = curator(*shlex.split(keep_going)[1:], "--json", cwd=tmp_path)
    assert json.loads(pasted.stdout)["cancelled"] == 0, pasted.stderr
    status = curator("status", checkpoint, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    tracebacks = _said(status.stdout, "full tracebacks: ")
    assert shlex.split(tracebacks)[:4] == ["curator", "status", checkpoint, "--failed"]
    (settings,) = [line for line in status.stdout.splitlines() if line.startswith("settings")]
    words = shlex.split(settings.removeprefix("settings"))
    assert words[:3] == ["curator", "run", target], settings


def test_the_checkpoint_a_fresh_resume_names_is_quoted(tmp_path: Path) -> None:
    target = _write(tmp_path, "pl.py", ODD_FAILS)
    elsewhere = ".curator/x y.sqlite"
    ran = curator("run", target, "--keep-going", "--checkpoint", elsewhere, "--reporter", "none",
                  cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 1, ran.stderr
    fresh = curator("run", target, "--resume", "--dry-run", cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr
    words = shlex.split(_said(fresh.stderr, "to resume it, give "))
    assert words == ["--checkpoint", elsewhere], fresh.stderr


def test_benchs_recommended_command_is_quoted(tmp_path: Path) -> None:
    target = _write(tmp_path, "my pipe.py", "from pipelines import ten as pipeline\n")
    proc = curator("bench", target, "-b", "sequential", "--sample", "2", "--allow-writes",
                   cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    recommended = _said(proc.stdout, "recommended: ").split("  (about")[0]
    assert shlex.split(recommended)[:3] == ["curator", "run", target], recommended


# -- 5. a reporter named twice ----------------------------------------------------------


@pytest.mark.parametrize("name", ["json", "summary", "log"])
def test_a_reporter_named_twice_is_refused(tmp_path: Path, name: str) -> None:
    proc = curator("run", "pipelines:ten", "--reporter", name, "--reporter", name, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert f"curator: error: reporter {name!r} is named twice" in proc.stderr
    assert proc.stdout == ""
    assert not (tmp_path / ".curator").exists()


def test_a_reporter_named_twice_in_python_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="reporter 'summary' is named twice"):
        run(numbers(2), reporter=["summary", "summary"])


def test_auto_beside_the_reporter_it_picks_reports_once(tmp_path: Path) -> None:
    # Into a pipe (and CI), auto picks log.
    proc = curator("run", "pipelines:ten", "--reporter", "auto", "--reporter", "log",
                   "--no-checkpoint", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("run started") == 1, proc.stderr


# -- 6. an empty --checkpoint -----------------------------------------------------------


@pytest.mark.parametrize("resume", [[], ["--resume"]])
def test_an_empty_checkpoint_path_is_refused(tmp_path: Path, resume: list[str]) -> None:
    proc = curator("run", "pipelines:ten", "--checkpoint", "", *resume, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "curator: error: --checkpoint needs a path, got an empty one" in proc.stderr
    assert not (tmp_path / ".curator").exists()


@pytest.mark.parametrize("command", [["status", ""], ["logs", "0", ""]])
def test_an_empty_checkpoint_argument_is_refused(tmp_path: Path, command: list[str]) -> None:
    proc = curator(*command, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "curator: error: the checkpoint or TARGET given is empty" in proc.stderr


# -- 7, 8. a backend's option flag ------------------------------------------------------


@pytest.fixture
def deep_env(site: Path) -> dict[str, str]:
    """A ``curator`` environment with the fixture backend ``deep`` and its flag ``--depth``."""
    make_distribution(site, "curator-fixture-flags", "1.0", {"deep": "curator_fixture_flags"})
    return subprocess_env(site)


def test_an_option_given_by_o_and_by_its_flag_is_refused(
    tmp_path: Path, deep_env: dict[str, str]
) -> None:
    for order in (["--depth", "3", "-o", "depth=4"], ["-o", "depth=4", "--depth", "3"]):
        proc = curator("run", "pipelines:ten", "-b", "deep", *order, env=deep_env, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert "curator: error: option 'depth' is given twice (-o depth=... and --depth)" in (
            proc.stderr
        )
        assert "deep: depth" not in proc.stderr  # nothing ran
    assert not (tmp_path / ".curator").exists()


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--indices", "0:5", "--indices", "6:8"], "--indices 0:5 and --indices 6:8"),
        (["-b", "thread-pool", "-b", "process-pool"], "-b thread-pool and -b process-pool"),
        (["-b", "thread-pool", "--jobs", "2", "-j", "1"], "--jobs 2 and -j 1"),
        (["--retries", "3", "--retries", "0"], "--retries 3 and --retries 0"),
        (["--metrics", "--no-metrics"], "--metrics and --no-metrics"),
        (["--all-metrics", "--no-metrics"], "--all-metrics and --no-metrics"),
        (["-b", "deep", "--depth", "3", "--depth", "4"], "--depth 3 and --depth 4"),
    ],
)
def test_a_flag_given_twice_with_two_values_is_refused(
    tmp_path: Path, deep_env: dict[str, str], flags: list[str], said: str
) -> None:
    """argparse kept the last value and said nothing: `--indices 0:5 --indices 6:8` ran
    items 6 and 7 for a user who meant both ranges (found by a review)."""
    proc = curator("run", "pipelines:ten", *flags, env=deep_env, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert f"curator run: error: {said} both given: give one" in proc.stderr
    assert not (tmp_path / ".curator").exists()


def test_a_flag_given_twice_with_the_same_value_is_accepted(tmp_path: Path) -> None:
    flags = ["-b", "thread-pool", "-j", "2", "--jobs", "2", "--metrics", "--metrics"]
    proc = curator("run", "pipelines:ten", *flags, "--dry-run", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["jobs"] == 2


@pytest.mark.parametrize("backend", [[], ["-b", "thread-pool"]])
def test_a_backend_flag_on_a_backend_without_it_names_the_flag(
    tmp_path: Path, deep_env: dict[str, str], backend: list[str]
) -> None:
    name = backend[1] if backend else "sequential"
    for dry in ([], ["--dry-run"]):
        proc = curator("run", "pipelines:ten", *backend, "--depth", "3", *dry, env=deep_env,
                       cwd=tmp_path)  # fmt: skip
        assert proc.returncode == 2, proc.stderr
        assert (
            f"curator: error: --depth is an option of backend deep; backend {name!r} does not "
            "take it" in proc.stderr
        )
        assert "unknown option" not in proc.stderr


# -- 9. no lock file beside a file that is no checkpoint ---------------------------------


@pytest.mark.parametrize("resume", [[], ["--resume"]])
def test_a_file_that_is_no_checkpoint_gets_no_lock_beside_it(
    tmp_path: Path, resume: list[str]
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    proc = curator("run", "pipelines:ten", "--checkpoint", "notes.txt", *resume, cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "is not a curator checkpoint" in proc.stderr
    assert notes.read_text() == "my notes\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_a_lock_file_that_was_there_before_stays(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("my notes\n")
    lock = tmp_path / "notes.txt.lock"
    lock.write_text("someone's\n")
    proc = curator("run", "pipelines:ten", "--checkpoint", "notes.txt", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert lock.exists()


def test_another_sqlite_database_gets_no_lock_beside_it(tmp_path: Path) -> None:
    """The run's own store refuses it (the header is SQLite's): its lock goes too."""
    other = tmp_path / "app.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("create table things (name text)")
    db.close()
    proc = curator("run", "pipelines:ten", "--checkpoint", "app.sqlite", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert not (tmp_path / "app.sqlite.lock").exists()


# -- 10. nan and inf as a reporter's number option ----------------------------------------


@pytest.mark.parametrize(
    ("reporter", "option", "value"),
    [("log", "interval", "nan"), ("log", "interval", "inf"), ("rich", "delay", "nan"),
     ("rich", "refresh_per_second", "inf")],
)  # fmt: skip
def test_a_reporter_number_option_must_be_finite(
    tmp_path: Path, reporter: str, option: str, value: str
) -> None:
    proc = curator("run", "pipelines:ten", "--reporter", reporter, "--reporter-option",
                   f"{reporter}.{option}={value}", cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert (
        f"curator: error: option {option!r} of reporter {reporter!r} must be a finite number, "
        f"got {value}" in proc.stderr
    )
    assert not (tmp_path / ".curator").exists()


def test_a_reporter_number_option_must_be_finite_in_python_too() -> None:
    with pytest.raises(UsageError, match="'interval' of reporter 'log' must be a finite number"):
        run(numbers(2), reporter="log", reporter_options={"log": {"interval": float("nan")}})


# -- 11. curator logs of an item whose output is not kept --------------------------------


HANGS = """\
import time
from curator import Sink
from curator.testing.probes import Numbers


class HangsAtOne(Sink):
    def __call__(self, items, index):
        print(f"item {index} starts", flush=True)
        if index == 1:
            time.sleep(60)
        return [str(value) for value in items]


pipeline = Numbers(2).write(HangsAtOne())
"""


def test_logs_of_a_timed_out_item_says_its_output_is_not_kept(tmp_path: Path) -> None:
    if importlib.util.find_spec("curator_backend_process_pool") is None:
        pytest.skip("the process-pool plugin is not installed")
    target = _write(tmp_path, "hangs.py", HANGS)
    ran = curator("run", target, "-b", "process-pool", "-j", "2", "--timeout", "1",
                  "--keep-going", "--reporter", "none", cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 1, ran.stderr
    hung = curator("logs", "1", target, cwd=tmp_path)
    assert hung.returncode == 0, hung.stderr
    assert "item 1: timed out" in hung.stdout
    assert "not keep what an item printed when it timed out" in hung.stdout
    assert "it printed nothing" not in hung.stdout
    fine = curator("logs", "0", target, cwd=tmp_path)
    assert "item 0 starts" in fine.stdout


@pytest.mark.parametrize(
    ("status", "said"),
    [("crashed", "when it crashed (its worker died)"), ("timed_out", "when it timed out"),
     ("interrupted", "when it was interrupted"), ("ok", "it printed nothing")],
)  # fmt: skip
def test_logs_says_why_an_items_record_holds_no_output(status: str, said: str) -> None:
    from curator.cli.logs import _no_output

    assert said in _no_output(status)


# -- a stage's teardown() that raises, after every item ran ---------------------------

TEARDOWN_FAILS = """
from curator import Filter, Sink
from curator.testing.probes import Numbers


class Flush(Filter):
    def setup(self, worker):
        pass

    def teardown(self):
        raise OSError("flush failed")

    def __call__(self, items):
        yield from items


class Out(Sink):
    def __call__(self, items, index):
        return [str(value) for value in items]


pipeline = Numbers(5).filter(Flush()).write(Out())
"""


def test_a_teardown_that_raises_exits_1_with_the_runs_summary(tmp_path: Path) -> None:
    # Every item ran and is recorded: a failed run (1) with its summary, not a usage error.
    target = _write(tmp_path, "flushing.py", TEARDOWN_FAILS)
    proc = curator("run", target, "--json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Flush.teardown() raised OSError: flush failed" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads(proc.stdout)["ok"] == 5
    resumed = curator("run", target, "--resume", "--json", cwd=tmp_path)
    assert json.loads(resumed.stdout)["skipped"] == 5
