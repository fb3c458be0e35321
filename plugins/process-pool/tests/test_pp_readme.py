"""The README's first command, exactly as written, runs on the process pool."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

from pp_support import subprocess_env

README = Path(__file__).resolve().parents[3] / "README.md"


def test_the_readme_run_command_works_as_written(tmp_path: Path) -> None:
    install = next(
        line for line in README.read_text().splitlines() if line.startswith("python3 -m pip ")
    )
    command = shlex.split(install.split("&&", 1)[1])
    assert command[:2] == ["curator", "run"], command
    assert "process-pool" in command
    proc = subprocess.run(
        [sys.executable, "-m", "curator", *command[1:]],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=subprocess_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "curator: 200 items: 200 ok" in proc.stderr
    assert "process-pool, jobs=2" in proc.stderr
    written = tmp_path / "curator-example-output"
    assert len(list(written.iterdir())) == 401  # a JSON and an image per item, and:
    assert json.loads((written / "dataset-statistics.json").read_text())["field"]["count"] > 0


JOBS = """\
from collections.abc import Iterator

from curator import Sink, Source


class Files(Source[str]):
    def __init__(self, count: int) -> None:
        self.count = count

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> Iterator[str]:
        yield f"file-{index}"


class Upper(Sink[str]):
    def __call__(self, items: Iterator[str], index: int) -> list[str]:
        return [item.upper() for item in items]


pipeline = Files(120).write(Upper())
"""

CONVERT = """\
from mypkg.jobs import Files, Upper


def build():
    return Files(10).write(Upper())
"""


def tour_commands() -> list[list[str]]:
    """The README tour's commands, without prompt and comments."""
    text = README.read_text()
    block = text.split("## A 30-second tour", 1)[1].split("```console", 1)[1].split("```", 1)[0]
    lines = [line[2:] for line in block.splitlines() if line.startswith("$ ")]
    return [shlex.split(line, comments=True) for line in lines]


def test_the_readme_tour_runs_as_written(tmp_path: Path) -> None:
    (tmp_path / "mypkg").mkdir()
    (tmp_path / "mypkg" / "__init__.py").write_text("")
    (tmp_path / "mypkg" / "jobs.py").write_text(JOBS)
    (tmp_path / "jobs").mkdir()
    (tmp_path / "jobs" / "convert.py").write_text(CONVERT)
    commands = tour_commands()
    assert len(commands) >= 10
    for command in commands:
        assert command[0] == "curator", command
        proc = subprocess.run(
            [sys.executable, "-m", "curator", *command[1:]],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=subprocess_env(),
            timeout=300,
        )
        # "Each command exits 0 when everything it was asked for succeeded."
        assert proc.returncode == 0, (command, proc.stderr)
        assert "Traceback" not in proc.stderr, (command, proc.stderr)
    assert (tmp_path / "events.jsonl").stat().st_size > 0
    assert len(list((tmp_path / ".curator").glob("*.sqlite"))) == 2


def test_the_readme_python_example_pasted_into_python_stdin_runs_on_the_process_pool(
    tmp_path: Path,
) -> None:
    text = README.read_text()
    example = text.split("```python\n", 1)[1].split("```", 1)[0]
    assert 'backend="thread-pool"' in example
    example = example.replace('backend="thread-pool"', 'backend="process-pool"')
    proc = subprocess.run(
        [sys.executable, "-"],
        input=example,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=subprocess_env(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == "[['2: C'], ['0: A']]"
    assert "Traceback" not in proc.stderr
