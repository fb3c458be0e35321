from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from core_support import as_json, curator, make_distribution, subprocess_env

from curator.cli.output import print_json, reserve_stdout
from curator.testing.probes import bypass_lines
from curator.testing.waiting import wait_until

ROW_KEYS = ["name", "provided_by", "version", "status", "detail", "description"]


@pytest.fixture
def plugin_site(site: Path) -> Path:
    make_distribution(site, "curator-fixture-good", "1.2.3", {"good": "curator_fixture_good"})
    make_distribution(
        site,
        "curator-fixture-import-error",
        "0.1",
        {"import-error": "curator_fixture_import_error"},
    )
    make_distribution(site, "curator-fixture-lossy", "0.2", {"lossy": "curator_fixture_lossy"})
    make_distribution(
        site, "curator-fixture-failing", "0.3", {"failing": "curator_fixture_failing"}
    )
    return site


def test_backends_list_json_has_exactly_the_documented_keys() -> None:
    rows = as_json(curator("backends", "list", "--json"))
    assert [list(row) for row in rows] == [ROW_KEYS] * len(rows)
    by_name = {row["name"]: row for row in rows}
    assert by_name["sequential"]["provided_by"] == "builtin"
    assert by_name["thread-pool"]["status"] == "ok"


def test_backends_list_shows_third_party_and_broken_plugins(plugin_site: Path) -> None:
    proc = curator("backends", "list", "--json", env=subprocess_env(plugin_site))
    rows = {row["name"]: row for row in as_json(proc)}
    assert rows["echo"]["provided_by"] == "curator-fixture-good"
    assert rows["echo"]["version"] == "1.2.3"
    assert rows["import-error"]["status"] == "broken"
    assert "ModuleNotFoundError" in rows["import-error"]["detail"]
    assert "plugin 'import-error' (curator-fixture-import-error 0.1) is broken" in proc.stderr
    human = curator("backends", "list", env=subprocess_env(plugin_site))
    assert human.returncode == 0
    for word in ("sequential", "thread-pool", "echo", "curator-fixture-good", "broken"):
        assert word in human.stdout


def test_no_plugins_switch(plugin_site: Path) -> None:
    for args, env in [
        (["--no-plugins"], subprocess_env(plugin_site)),
        ([], subprocess_env(plugin_site, CURATOR_NO_PLUGINS="1")),
    ]:
        rows = as_json(curator(*args, "backends", "list", "--json", env=env))
        assert {row["name"] for row in rows} == {"sequential", "thread-pool"}


def test_strict_env_switch_makes_a_broken_plugin_fatal(plugin_site: Path) -> None:
    proc = curator("backends", "list", env=subprocess_env(plugin_site, CURATOR_STRICT_PLUGINS="1"))
    assert proc.returncode == 4
    assert "plugin 'import-error'" in proc.stderr


def test_backends_show() -> None:
    data = as_json(curator("backends", "show", "thread_pool", "--json"))
    assert data["name"] == "thread-pool"
    assert data["capabilities"]["parallel"] is True
    assert data["options"] == [
        {
            "name": "copy_pipeline",
            "type": "bool",
            "default": True,
            "help": "give each thread its own deep copy of the pipeline; false shares one "
            "object (only for thread-safe pipelines)",
        }
    ]
    human = curator("backends", "show", "thread-pool")
    assert human.returncode == 0
    assert "copy_pipeline" in human.stdout
    assert "parallel=True" in human.stdout
    missing = curator("backends", "show", "thread-poll")
    assert missing.returncode == 2
    assert "did you mean 'thread-pool'?" in missing.stderr


def test_plugins_and_reporters_list(plugin_site: Path) -> None:
    env = subprocess_env(plugin_site)
    plugins = {row["name"]: row for row in as_json(curator("plugins", "list", "--json", env=env))}
    assert plugins["good"] == {
        "name": "good",
        "provided_by": "curator-fixture-good",
        "version": "1.2.3",
        "status": "loaded",
        "detail": "",
        "provides": ["backend:echo", "reporter:last-result", "reporter:tally"],
    }
    assert plugins["import-error"]["status"] == "broken"
    assert plugins["builtin-backends"]["provided_by"] == "builtin"
    reporters = as_json(curator("reporters", "list", "--json", env=env))
    assert [list(r) for r in reporters] == [ROW_KEYS] * len(reporters)
    assert {"summary", "none", "last-result"} <= {r["name"] for r in reporters}
    assert curator("plugins", "list", env=env).returncode == 0


def test_run_prints_a_json_summary() -> None:
    proc = curator("run", "pipelines:ten", "--backend", "thread-pool", "-j", "2", "--json")
    summary = as_json(proc)
    assert summary["total"] == 10
    assert summary["ok"] == 10
    assert summary["failed"] == 0
    assert summary["backend"] == "thread-pool"
    assert summary["jobs"] == 2
    assert summary["seconds"] >= 0
    assert "curator: 10 items: 10 ok" in proc.stderr


NOISY_TARGET = """\
print("the target prints while it is imported")
from curator.testing.probes import probe
pipeline = probe(4, {folder!r}, bypass=frozenset(range(4)), chatty=True)
"""


@pytest.mark.parametrize("capture", ["--capture", "--no-capture"])
@pytest.mark.parametrize(("backend", "jobs"), [("sequential", "1"), ("thread-pool", "2")])
def test_with_json_stdout_carries_the_json_only(
    tmp_path: Path, backend: str, jobs: str, capture: str
) -> None:
    """What items write past the capture (or without it) goes to stderr, not stdout."""
    (tmp_path / "noisy.py").write_text(NOISY_TARGET.format(folder=str(tmp_path)))
    proc = curator("run", "noisy.py:pipeline", "-b", backend, "-j", jobs, capture, "--json",
                   cwd=tmp_path)  # fmt: skip
    summary = as_json(proc)  # the whole of stdout is one JSON document
    assert summary["ok"] == 4
    assert "the target prints while it is imported" in proc.stderr
    for index in range(4):
        for line in bypass_lines(index):
            assert line in proc.stderr


LINGERING_TARGET = """\
import os, threading
from curator import Sink
from curator.testing.probes import Numbers

def after_the_command():
    threading.main_thread().join()  # the command has ended: its JSON is out
    os.write(1, b"a thread the item left behind writes\\n")

class LeavesAThread(Sink):
    def __call__(self, items, index):
        threading.Thread(target=after_the_command).start()
        return list(items)

pipeline = Numbers(1).write(LeavesAThread())
"""


def test_with_json_a_thread_that_outlives_the_command_writes_to_stderr(tmp_path: Path) -> None:
    (tmp_path / "lingering.py").write_text(LINGERING_TARGET)
    proc = curator("run", "lingering.py:pipeline", "--json", cwd=tmp_path)
    assert as_json(proc)["ok"] == 1
    assert "a thread the item left behind writes" in proc.stderr


def test_reserved_stdout_carries_the_commands_output_and_is_put_back_after(
    capfd: pytest.CaptureFixture[str],
) -> None:
    before = sys.stdout
    with reserve_stdout():
        os.write(1, b"to fd 1\n")
        print("to sys.stdout")
        print_json({"answer": 42})
    assert sys.stdout is before
    os.write(1, b"after\n")
    out, err = capfd.readouterr()
    assert out == json.dumps({"answer": 42}, indent=2) + "\nafter\n"
    assert "to fd 1\n" in err
    assert "to sys.stdout\n" in err


def test_run_with_indices_and_a_zero_argument_callable() -> None:
    summary = as_json(curator("run", "pipelines:numbers", "--indices", "0:4,8", "--json"))
    assert summary["total"] == 5


def test_a_failed_item_exits_1_with_the_worker_traceback() -> None:
    proc = curator("run", "pipelines:fails_at_3", "--json")
    assert proc.returncode == 1
    assert "item 3 failed: ValueError: bad item 3" in proc.stderr
    assert "Traceback from the worker" in proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["stopped_at"] == 3
    assert summary["failed"] == 1


def test_keep_going_runs_everything_and_exits_1() -> None:
    proc = curator(
        "run",
        "pipelines:fails_at_3_and_7",
        "--keep-going",
        "-b",
        "thread-pool",
        "-j",
        "2",
        "--json",
    )
    assert proc.returncode == 1
    summary = json.loads(proc.stdout)
    assert (summary["ok"], summary["failed"]) == (8, 2)
    assert [f["index"] for f in summary["failures"]] == [3, 7]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pipelines"], "expected package.module:attr or path/to/file.py:attr"),
        (["no_such_module_xyz:p"], "no module named 'no_such_module_xyz'"),
        (["pipelines:tenn"], "has no attribute 'tenn'; did you mean 'ten'?"),
        (["pipelines:not_a_pipeline"], "expected a curator Pipeline, got int"),
        (["pipelines:source_only"], r"call .write(sink)"),
        (["pipelines:needs_an_argument"], "needs arguments (missing a required argument: 'count')"),
        (["missing/file.py:p"], "no file 'missing/file.py'"),
        (["pipelines:ten", "--backend", "thread-pol"], "did you mean 'thread-pool'?"),
        (
            ["pipelines:ten", "-b", "thread-pool", "-j", "2", "-o", "copy=1"],
            "unknown option 'copy'",
        ),
        (["pipelines:ten", "-o", "novalue"], "expected KEY=VALUE"),
        (["pipelines:ten", "--indices", "0:99"], "goes past the last index"),
        (["pipelines:ten", "-j", "0"], "jobs must not be 0"),
        (["pipelines:ten", "-j", "two"], "invalid int value"),
        (["pipelines:ten", "--reporter", "fancy"], "unknown reporter 'fancy'"),
    ],
)
def test_usage_errors_exit_2_without_a_traceback(args: list[str], message: str) -> None:
    proc = curator("run", *args)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback (most recent call last)" not in proc.stderr


def frames(stderr: str) -> list[str]:
    """The files of the traceback's frames, in order."""
    return [line.split('"')[1] for line in stderr.splitlines() if line.startswith('  File "')]


@pytest.mark.parametrize("form", ["module", "file"])
def test_a_broken_module_target_shows_its_own_traceback_and_only_that(
    tmp_path: Path, form: str
) -> None:
    (tmp_path / "helper_of_target.py").write_text("raise RuntimeError('oops in user code')\n")
    (tmp_path / "broken_target.py").write_text("import helper_of_target\n")
    target = "broken_target:p" if form == "module" else f"{tmp_path / 'broken_target.py'}:p"
    proc = curator("run", target, cwd=tmp_path)
    assert proc.returncode == 2
    assert "importing 'broken_target' failed" in proc.stderr
    assert "RuntimeError: oops in user code" in proc.stderr
    # From the user's first line on: no frames of curator or of the import machinery.
    assert frames(proc.stderr) == [
        str(tmp_path / "broken_target.py"),
        str(tmp_path / "helper_of_target.py"),
    ], proc.stderr


@pytest.mark.parametrize("form", ["module", "file"])
def test_a_target_whose_module_name_is_taken_already_says_so(tmp_path: Path, form: str) -> None:
    """`stat:pipeline` with a ./stat.py imported the standard library's stat, and the
    error was that it has no attribute 'pipeline' (found by a review)."""
    (tmp_path / "stat.py").write_text((Path(__file__).parent / "pipelines.py").read_text())
    target = "stat:ten" if form == "module" else "stat.py:ten"
    proc = curator("run", target, "--dry-run", cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "the module name 'stat' is already taken by " in proc.stderr
    assert "has no attribute" not in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_module_of_the_current_directory_that_nothing_hides_is_the_target(
    tmp_path: Path,
) -> None:
    # A standard module's name that nothing imports before the target.
    (tmp_path / "turtle.py").write_text((Path(__file__).parent / "pipelines.py").read_text())
    proc = curator("run", "turtle:ten", "--dry-run", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["requested"] == 10


def test_a_target_with_a_syntax_error_shows_the_line_and_no_frames(tmp_path: Path) -> None:
    (tmp_path / "typo_target.py").write_text("pipeline = (\n")
    proc = curator("run", "typo_target:pipeline", cwd=tmp_path)
    assert proc.returncode == 2
    assert "importing 'typo_target' failed" in proc.stderr
    assert "SyntaxError" in proc.stderr
    assert f'File "{tmp_path / "typo_target.py"}", line 1' in proc.stderr
    assert frames(proc.stderr) == [str(tmp_path / "typo_target.py")], proc.stderr


def test_a_failing_target_factory_shows_its_own_traceback() -> None:
    proc = curator("run", "pipelines:raises_while_building")
    assert proc.returncode == 2
    assert "calling raises_while_building() failed" in proc.stderr
    assert "RuntimeError: cannot build the pipeline" in proc.stderr
    assert [Path(f).name for f in frames(proc.stderr)] == ["pipelines.py"], proc.stderr


def test_file_targets(tmp_path: Path) -> None:
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "my_job.py").write_text("from pipelines import numbers\npipeline = numbers(6)\n")
    summary = as_json(curator("run", f"{folder / 'my_job.py'}:pipeline", "--json"))
    assert summary["total"] == 6
    relative = as_json(curator("run", "jobs/my_job.py:pipeline", "--json", cwd=tmp_path))
    assert relative["ok"] == 6


def test_a_plugin_backend_that_raises_names_the_plugin_and_keeps_what_finished(
    plugin_site: Path, tmp_path: Path
) -> None:
    """An error raised in a plugin's execute was "internal error ... please report it"
    (exit 3), with a --no-plugins hint that leaves no such backend (found by a review)."""
    env = subprocess_env(plugin_site)
    proc = curator("run", "pipelines:ten", "-b", "unreachable", "-j", "2", env=env, cwd=tmp_path)
    assert proc.returncode == 4, proc.stderr
    assert "backend 'unreachable' failed: ConnectionError: the cluster is unreachable" in (
        proc.stderr
    )
    assert "raised in plugin 'failing' (curator-fixture-failing 0.3)" in proc.stderr
    assert "internal error" not in proc.stderr
    (listed,) = json.loads(curator("status", "--json", cwd=tmp_path, env=env).stdout)
    assert listed["done"] == 4, listed


def test_a_plugin_backend_whose_close_raises_loses_nothing_and_is_named(
    plugin_site: Path, tmp_path: Path
) -> None:
    """close() raising after a full run cost the last outcome's record, the summary and the
    reporters' run_finish; the run read "died" and a resume ran an item again."""
    env = subprocess_env(plugin_site)
    args = ["run", "pipelines:ten", "-b", "close-raises", "-j", "2", "--json"]
    proc = curator(*args, env=env, cwd=tmp_path)
    assert proc.returncode == 4, proc.stderr
    assert json.loads(proc.stdout)["ok"] == 10
    assert "backend 'close-raises' raised in close(): RuntimeError: close exploded" in proc.stderr
    assert "that is a bug in plugin 'failing' (curator-fixture-failing 0.3)" in proc.stderr
    (listed,) = json.loads(curator("status", "--json", cwd=tmp_path, env=env).stdout)
    assert (listed["done"], listed["state"]) == (10, "finished"), listed


def test_broken_plugin_backend_exits_4(plugin_site: Path) -> None:
    proc = curator(
        "run", "pipelines:ten", "--backend", "import-error", env=subprocess_env(plugin_site)
    )
    assert proc.returncode == 4
    assert "would come from plugin 'import-error'" in proc.stderr


def test_a_plugin_backends_bug_is_the_plugins_error_and_names_it(
    plugin_site: Path, tmp_path: Path
) -> None:
    env = subprocess_env(plugin_site)
    proc = curator("run", "pipelines:ten", "--backend", "lossy", "-j", "2", env=env, cwd=tmp_path)
    assert proc.returncode == 4, proc.stderr
    assert "finished without an outcome for 1 indices: [9]" in proc.stderr
    assert "that is a bug in plugin 'lossy' (curator-fixture-lossy 0.2), not in your pipeline" in (
        proc.stderr
    )
    assert "Traceback" in proc.stderr  # for the plugin's authors
    assert "internal error" not in proc.stderr
    # The items it did report are recorded: a resume runs only the lost one.
    resumed = curator("run", "pipelines:ten", "--resume", "-b", "thread-pool", "-j", "2",
                      "--json", env=env, cwd=tmp_path)  # fmt: skip
    assert as_json(resumed)["skipped"] == 9, resumed.stderr


def test_ctrl_c_exits_130_and_reports_what_finished(tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    args = ["run", "pipelines:slow", "-b", "thread-pool", "-j", "2", "--json"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "curator", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=subprocess_env(CURATOR_TEST_MARKERS=str(markers)),
        cwd=tmp_path,
        # A shell without job control starts background jobs with SIGINT ignored, and
        # children inherit that; give curator the default disposition a terminal gives.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    wait_until(lambda: len(list(markers.iterdir())) >= 2, 60, "two items to finish")
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    summary = json.loads(out)
    assert summary["interrupted"] is True
    assert 2 <= summary["ok"] < 200
    assert summary["cancelled"] == 200 - summary["ok"]
    # Every item reported ok really ran (left its marker).
    assert summary["ok"] <= len(list(markers.iterdir()))
    # A deliberate Ctrl-C is not an error: one line says where things stand and what next.
    assert "error" not in err
    done = re.search(
        r"^curator: interrupted; (\d+) of 200 items are done and recorded in \S+\.sqlite; "
        r"to finish the rest with the same settings: curator run pipelines:slow --resume$",
        err,
        re.M,
    )
    assert done is not None, err
    assert int(done.group(1)) == summary["ok"]


FAILS_FROM_THE_ENVIRONMENT = """
import os
from curator import Sink, Source


class Twenty(Source[int]):
    def __len__(self):
        return 20

    def __getitem__(self, index):
        if str(index) == os.environ["FAIL_AT"]:
            raise ValueError(f"bad item {index}")
        yield index


class Write(Sink[int]):
    def __call__(self, items, index):
        return [str(item) for item in items]


pipeline = Twenty().write(Write())
"""


def test_the_resume_hint_counts_the_items_earlier_runs_left_done(tmp_path: Path) -> None:
    script = tmp_path / "flaky.py"
    script.write_text(FAILS_FROM_THE_ENVIRONMENT)
    args = ("run", f"{script}:pipeline", "--checkpoint", str(tmp_path / "c.sqlite"))
    first = curator(*args, env=subprocess_env(FAIL_AT="15"))
    assert first.returncode == 1, first.stderr
    assert "15 of 20 items are done and recorded in" in first.stderr
    # Not a resume: items 0-2 run again, 3 fails, and 4-14 are still done from the first run.
    second = curator(*args, env=subprocess_env(FAIL_AT="3"))
    assert second.returncode == 1, second.stderr
    assert "14 of 20 items are done and recorded in" in second.stderr, second.stderr
    dry = as_json(curator(*args, "--resume", "--dry-run", "--json", env=subprocess_env(FAIL_AT="")))
    assert dry["done"] == 14


def test_status_of_a_folder_without_checkpoints(tmp_path: Path) -> None:
    listed = curator("status", "--json", cwd=tmp_path)
    assert (listed.returncode, json.loads(listed.stdout)) == (0, []), listed.stderr
    shown = curator("status", cwd=tmp_path)
    assert shown.returncode == 2
    assert "no checkpoint in .curator/ (runs record one unless --no-checkpoint)" in shown.stderr


def test_version_and_console_script() -> None:
    from curator import __version__

    assert curator("--version").stdout.strip() == f"curator {__version__}"
    script = Path(sys.executable).parent / "curator"
    proc = subprocess.run(
        [str(script), "backends", "list", "--json"],
        capture_output=True,
        text=True,
        env=subprocess_env(),
    )
    assert proc.returncode == 0
    assert {"sequential", "thread-pool"} <= {row["name"] for row in json.loads(proc.stdout)}


def test_missing_verb_is_a_usage_error() -> None:
    proc = curator("backends")
    assert proc.returncode == 2
    assert "usage: curator backends" in proc.stderr


@pytest.mark.parametrize(
    "command",
    [["run", "pipelines:ten"], ["bench", "pipelines:ten"], ["backends", "list"], ["status"]],
)
def test_an_unknown_argument_is_refused_with_the_subcommands_usage(command: list[str]) -> None:
    """The top level's usage line was shown: `usage: curator [-h] [--version] ... COMMAND`."""
    proc = curator(*command, "--frobnicate")
    assert proc.returncode == 2, proc.stderr
    name = " ".join(word for word in command if ":" not in word)
    assert proc.stderr.startswith(f"usage: curator {name} "), proc.stderr
    assert f"curator {name}: error: unrecognized arguments: --frobnicate" in proc.stderr
