"""Helpers shared by the process-pool tests (a module of its own, not conftest, so the
core and plugin suites can be collected in one session)."""

from __future__ import annotations

import os
from pathlib import Path

from curator.testing.processes import descendants, running

HERE = Path(__file__).parent

__all__ = ["HERE", "alive", "descendants", "subprocess_env"]

alive = running


def subprocess_env(**extra: str) -> dict[str, str]:
    """This environment, with the test helpers importable, plus ``extra``."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env
