"""Helpers of the report's tests (a module, not conftest: suites can be collected together)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from curator.testing.processes import child_env, run_curator, shown_while_running

__all__ = ["HERE", "curator", "shown_while_running", "subprocess_env"]

HERE = Path(__file__).parent


def subprocess_env(**extra: str) -> dict[str, str]:
    """This environment, with the test pipelines importable, plus ``extra``."""
    return child_env(HERE, **extra)


def curator(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the ``curator`` command in ``cwd``."""
    return run_curator(*args, cwd=cwd, env=env or subprocess_env())
