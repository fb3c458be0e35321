"""The README's first command, exactly as written, runs on the process pool."""

from __future__ import annotations

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
    assert len(list((tmp_path / "curator-example-output").iterdir())) == 400
