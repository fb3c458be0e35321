"""Compile an environment's installed packages (and given source folders) to bytecode once.

The test suites start the curator CLI and worker processes hundreds of times with
``PYTHONDONTWRITEBYTECODE=1`` (tests rewrite pipeline files faster than a ``.pyc``'s
timestamp can tell them apart). Without a compiled copy on disk, every one of those
processes would compile rich, pluggy and curator from source again: about a third of a
CLI start. Used by ``tox.ini`` before each suite.

Usage: ``python tools/precompile.py [FOLDER ...]``
"""

from __future__ import annotations

import compileall
import sys
import sysconfig


def main(folders: list[str]) -> int:
    """Compile the environment's ``purelib`` and ``folders``; 1 if a file would not compile."""
    ok = True
    for folder in [sysconfig.get_path("purelib"), *folders]:
        ok = bool(compileall.compile_dir(folder, quiet=2, workers=0)) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
