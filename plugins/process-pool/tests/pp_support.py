"""Helpers shared by the process-pool tests (a module of its own, not conftest, so the
core and plugin suites can be collected in one session)."""

from __future__ import annotations

from pathlib import Path

from curator.testing.processes import child_env, descendants, running

HERE = Path(__file__).parent

__all__ = ["HERE", "descendants", "running", "subprocess_env"]


def subprocess_env(**extra: str) -> dict[str, str]:
    """This environment, with the test helpers importable, plus ``extra``."""
    return child_env(HERE, **extra)
