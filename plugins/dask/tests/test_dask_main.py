"""A pipeline defined in ``__main__`` runs on a LocalCluster; the script's top level runs once.

Real interpreters, as a user runs them: a script without an
``if __name__ == "__main__":`` guard, and the same code piped to ``python -``.
Classes and results of ``__main__`` travel by value; each of two runs sees
the environment as it is when the run starts, and Dask's config is whole after them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from curator.testing.processes import child_env

HERE = Path(__file__).parent

SCRIPT = """
import json, os
from dataclasses import dataclass
from curator import Sink, Source, run

with open("top-level.log", "a") as log:  # no guard: this must run once, here
    log.write(f"{os.getpid()}\\n")

@dataclass
class Seen:
    index: int
    x: str

class Numbers(Source):
    def __init__(self, n):
        self.n = n
    def __len__(self):
        return self.n
    def __getitem__(self, i):
        yield i

class Report(Sink):
    def __call__(self, items, index):
        return [Seen(i, os.environ.get("CURATOR_TEST_X")) for i in items]

rounds = []
for x in ("a", "b"):
    os.environ["CURATOR_TEST_X"] = x
    result = run(Numbers(4).filter(lambda items: (i * 10 for i in items)).write(Report()),
                 backend="dask", jobs=2, reporter=None)
    assert all(isinstance(seen, Seen) for out in result.outputs for seen in out), "class lost"
    rounds.append([[s.index, s.x] for out in result.outputs for s in out])
import dask  # Dask's own settings outlive the runs (a later cluster of the user's needs them)
dask.config.get("distributed.comm.timeouts.connect")
print(json.dumps(rounds))
"""


@pytest.mark.parametrize("how", ["script", "stdin"])
def test_a_main_module_pipeline_runs_on_a_local_cluster(how: str, tmp_path: Path) -> None:
    if how == "script":
        (tmp_path / "no_guard.py").write_text(SCRIPT)
        argv, stdin = [sys.executable, "no_guard.py"], None
    else:
        argv, stdin = [sys.executable, "-"], SCRIPT
    proc = subprocess.run(
        argv,
        input=stdin,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=child_env(HERE, *sys.path),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    expected = [[[i * 10, x] for i in range(4)] for x in ("a", "b")]
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == expected
    assert len((tmp_path / "top-level.log").read_text().split()) == 1
