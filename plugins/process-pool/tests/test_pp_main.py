"""Pipelines defined in ``__main__``, and workers that see the run's world as it is now.

Each case runs a real interpreter the way a user would: a script with no
``if __name__ == "__main__":`` guard, code piped to ``python -``, or given to
``python -c``; on every start method. The script's top level must run once
(workers never execute the main module again), classes, lambdas and results of
``__main__`` travel by value, and each of two runs in one process sees the
environment variables, ``sys.path``, working directory and module files as
they are when that run starts.
"""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest
from pp_support import subprocess_env

from curator.testing.probes import pipeline_file

START_METHODS = [
    m for m in ("forkserver", "spawn", "fork") if m in multiprocessing.get_all_start_methods()
]

SCRIPT = """
import json, os, sys
from dataclasses import dataclass
from curator import Sink, Source, run

with open("top-level.log", "a") as log:  # no guard: this must run once, here
    log.write(f"{os.getpid()}\\n")

@dataclass
class Seen:
    index: int
    x: str
    probe: int
    cwd: str

class Numbers(Source):
    def __init__(self, n):
        self.n = n
    def __len__(self):
        return self.n
    def __getitem__(self, i):
        yield i

class Report(Sink):
    def __call__(self, items, index):
        import probe  # a module of the second run's sys.path, edited between runs
        return [Seen(i, os.environ.get("CURATOR_TEST_X"), probe.VALUE, os.getcwd()) for i in items]

method = sys.argv[-1] if len(sys.argv) > 1 and sys.argv[-1] != "-" else os.environ["METHOD"]
base = os.getcwd()
pipeline = Numbers(6).filter(lambda items: (i * 10 for i in items)).write(Report())
rounds = []
for x, value in (("a", 1), ("b", 222)):
    os.environ["CURATOR_TEST_X"] = x
    folder = os.path.join(base, f"mods-{x}")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "probe.py"), "w") as module:
        module.write(f"VALUE = {value}\\n")
    sys.path.insert(0, folder)
    os.chdir(folder)
    result = run(pipeline, backend="process-pool", jobs=2, reporter=None,
                 options={"start_method": method})
    assert all(isinstance(seen, Seen) for out in result.outputs for seen in out), "class lost"
    seen = [s for out in result.outputs for s in out]
    rounds.append([[s.index, s.x, s.probe, os.path.basename(s.cwd)] for s in seen])
    sys.path.remove(folder)
os.chdir(base)
print(json.dumps(rounds))
"""

EXPECTED = [
    [[i * 10, "a", 1, "mods-a"] for i in range(6)],
    [[i * 10, "b", 222, "mods-b"] for i in range(6)],
]


def _launch(how: str, method: str, folder: Path) -> subprocess.CompletedProcess[str]:
    env = subprocess_env(METHOD=method, PYTHONDONTWRITEBYTECODE="1")
    if how == "script":
        script = folder / "no_guard.py"
        script.write_text(SCRIPT)
        argv, stdin = [sys.executable, str(script), method], None
    elif how == "stdin":
        argv, stdin = [sys.executable, "-"], SCRIPT
    else:
        argv, stdin = [sys.executable, "-c", SCRIPT], None
    return subprocess.run(
        argv, input=stdin, capture_output=True, text=True, cwd=folder, env=env, timeout=180
    )


@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.parametrize("how", ["script", "stdin", "command"])
def test_a_main_module_pipeline_runs_and_sees_each_runs_world(
    how: str, method: str, tmp_path: Path
) -> None:
    proc = _launch(how, method, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == EXPECTED
    runs_of_top_level = (tmp_path / "top-level.log").read_text().split()
    assert len(runs_of_top_level) == 1, f"the main module ran {len(runs_of_top_level)} times"
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("method", START_METHODS)
def test_a_pipeline_files_objects_travel_by_value_and_come_back_as_its_own(
    method: str, tmp_path: Path
) -> None:
    # `curator run jobs/convert.py:pipeline` ships the file's classes by value (as
    # for __main__); results of its own class pass the workers' check, are stored,
    # and a resume reads them back.
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "convert.py").write_text(pipeline_file(12))
    command = [sys.executable, "-m", "curator", "run", "jobs/convert.py:pipeline"]
    command += ["-b", "process-pool", "-j", "2", "-o", f"start_method={method}", "--json"]
    for more, counted in (([], "ok"), (["--resume"], "skipped")):
        proc = subprocess.run(
            [*command, *more],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=subprocess_env(),
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)[counted] == 12


BROKEN_FILE = """
from curator import Sink, Source


class Numbers(Source[int]):
    def __len__(self):
        return 4

    def __getitem__(self, index):
        if index == 2:
            raise ValueError("item 2 is broken")  # line 11
        yield index


class Strings(Sink[int]):
    def __call__(self, items, index):
        return [str(item) for item in items]  # line 17


pipeline = Numbers().write(Strings())
"""


@pytest.mark.parametrize("method", START_METHODS)
def test_a_worker_traceback_names_the_pipeline_files_lines(method: str, tmp_path: Path) -> None:
    # The file's code travels by value; cloudpickle alone would name it "<dynamic-code>".
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "broken.py").write_text(BROKEN_FILE)
    proc = subprocess.run(
        [sys.executable, "-m", "curator", "run", "jobs/broken.py:pipeline", "-b", "process-pool",
         "-j", "2", "-o", f"start_method={method}", "--no-checkpoint", "--reporter", "none"],
        capture_output=True, text=True, cwd=tmp_path, env=subprocess_env(), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback from the worker" in proc.stderr
    path = tmp_path / "jobs" / "broken.py"
    assert f'File "{path}", line 17, in <listcomp>' in proc.stderr or (
        f'File "{path}", line 17, in __call__' in proc.stderr  # 3.12+ inlines comprehensions
    ), proc.stderr
    assert f'File "{path}", line 11, in __getitem__' in proc.stderr, proc.stderr
    assert 'raise ValueError("item 2 is broken")  # line 11' in proc.stderr  # the source line
    assert "<dynamic-code>" not in proc.stderr


PRELOADED = """
import gc, sys
from curator import Sink, Source


class Two(Source[int]):
    def __len__(self):
        return 2

    def __getitem__(self, index):
        yield index


class WhatTheWorkerHas(Sink[int]):
    def __call__(self, items, index):
        list(items)
        return [gc.get_freeze_count(), "curator.backends.work" in sys.modules,
                "logging" in sys.modules]

"""

PRELOADED_RUN = """
import json
from curator import run
from preloaded import Two, WhatTheWorkerHas  # importable: no cloudpickle (which imports logging)

result = run(Two().write(WhatTheWorkerHas()), backend="process-pool", jobs=2, reporter=None)
print(json.dumps(result.outputs))
"""


def test_workers_fork_from_a_server_with_curator_loaded_and_frozen(tmp_path: Path) -> None:
    (tmp_path / "preloaded.py").write_text(PRELOADED)
    script = tmp_path / "run_preloaded.py"
    script.write_text(PRELOADED_RUN)
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, cwd=tmp_path,
        env=subprocess_env(), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    for frozen, has_work, has_logging in json.loads(proc.stdout):
        assert frozen > 1000  # what the server imported is out of the workers' collections
        assert has_work
        assert not has_logging  # capture sets its catcher up when something imports it


_LIST_CHILDREN = """
import os, sys, time
from curator import run, stream
from pp_pipelines import pipeline

def children():
    found = []
    for task in os.listdir(f"/proc/{os.getpid()}/task"):
        with open(f"/proc/{os.getpid()}/task/{task}/children") as listed:
            for pid in listed.read().split():
                with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                    found.append(cmdline.read().replace(b"\\0", b" ").decode())
    return found
"""

_CHILDREN = (
    _LIST_CHILDREN
    + """
made = stream(pipeline(4), backend="process-pool", jobs=2, reporter=None,
              options={"start_method": sys.argv[1]})
# A child shows this command line (or none) until its exec is done: look again for a
# while, for words this code does not hold in one piece.
server = "from multiprocessing" + ".forkserver import main"
deadline = time.monotonic() + 30
while True:
    servers = sum(server in c for c in children())
    if servers or sys.argv[1] != "forkserver" or time.monotonic() > deadline:
        break
    time.sleep(0.01)
print(servers)
print(len(list(made)))
"""
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; forkserver")
@pytest.mark.parametrize(("method", "servers"), [("forkserver", 1), ("spawn", 0)])
def test_the_fork_server_starts_with_the_runs_checks_before_it_begins(
    method: str, servers: int
) -> None:
    """start_early: the fork server's start overlaps the checks, checkpoint and reporters."""
    ran = subprocess.run([sys.executable, "-c", _CHILDREN, method], capture_output=True,
                         text=True, env=subprocess_env(), timeout=120)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == [str(servers), "4"]


_NOTHING_SELECTED = (
    _LIST_CHILDREN
    + """
result = run(pipeline(4), backend="process-pool", jobs=2, reporter=None, indices=[],
             options={"start_method": "forkserver"})
print(len(result.outcomes), children())
"""
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; forkserver")
def test_a_run_that_selects_nothing_starts_no_process() -> None:
    """indices=[] starts nothing: no fork server, no resource tracker, no worker."""
    ran = subprocess.run([sys.executable, "-c", _NOTHING_SELECTED], capture_output=True,
                         text=True, env=subprocess_env(), timeout=120)  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.split() == ["0", "[]"]
