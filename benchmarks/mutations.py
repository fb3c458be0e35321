"""Plant known bugs, one at a time, and check that the test suites catch each.

Usage::

    python benchmarks/mutations.py            # every mutation
    python benchmarks/mutations.py --only 3   # one of them

Each mutation is a one-line change to a copy of the sources (never to the
checkout); the tests named for it run against that copy (it comes first on
``PYTHONPATH``, ahead of any installed curator). A mutation is *caught* when
at least one of those tests fails. Needs a development install of the core and
the process-pool plugin (``pip install -e . -e ./plugins/process-pool``) and
pytest; run from the repository root.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str
    path: str
    before: str
    after: str
    tests: tuple[str, ...]


MUTATIONS = [
    Mutation(
        "thread pool shares one pipeline copy between threads",
        "core/curator/backends/thread_pool.py",
        "works = [self._copy(work) for _ in range(n_threads)]",
        "works = [self._copy(work)] * n_threads",
        ("tests/test_thread_pool.py",),
    ),
    Mutation(
        "the fingerprint leaves the filters out",
        "core/curator/fingerprint.py",
        '"filters": [walk.labelled(f"filter {n}", f) for n, f in enumerate(pipeline.filters, 1)],',
        '"filters": [],',
        ("tests/test_fingerprint.py",),
    ),
    Mutation(
        "the process pool enforces timeouts at 10x the limit",
        "plugins/process-pool/src/curator_backend_process_pool/pool.py",
        "if now - self.since[slot] > self.timeout and",
        "if now - self.since[slot] > 10 * self.timeout and",
        (
            "plugins/process-pool/tests/test_pp_reliability.py::"
            "test_a_hung_item_times_out_its_worker_is_replaced_and_the_run_goes_on",
        ),
    ),
    Mutation(
        "the grace period lasts 100x longer",
        "core/curator/interrupts.py",
        "self._timer = threading.Timer(self.grace, self._grace_over)",
        "self._timer = threading.Timer(self.grace * 100, self._grace_over)",
        ("tests/test_conformance.py", "-k", "grace_period"),
    ),
    Mutation(
        "SIGTERM is handled like a first Ctrl-C (graceful)",
        "core/curator/interrupts.py",
        "self._previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._on_sigterm)",
        "self._previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, self._on_sigint)",
        ("tests/test_conformance.py", "-k", "sigterm"),
    ),
    Mutation(
        "chunk sizes without tail balancing",
        "plugins/process-pool/src/curator_backend_process_pool/chunking.py",
        "fair = math.ceil(remaining / (4 * self.workers))",
        "fair = remaining",
        ("plugins/process-pool/tests/test_chunking.py",),
    ),
]


def plant(mutation: Mutation, into: Path) -> None:
    """Copy the sources into ``into`` with ``mutation`` applied."""
    shutil.copytree(ROOT / "core" / "curator", into / "core" / "curator")
    shutil.copytree(
        ROOT / "plugins" / "process-pool" / "src", into / "plugins" / "process-pool" / "src"
    )
    target = into / mutation.path
    text = target.read_text()
    if text.count(mutation.before) != 1:
        raise SystemExit(f"{mutation.name}: the line to mutate is not in {mutation.path}")
    target.write_text(text.replace(mutation.before, mutation.after))


def caught(mutation: Mutation) -> tuple[bool, float, str]:
    """Run the mutation's tests against a mutated copy; true if any fails."""
    with tempfile.TemporaryDirectory(prefix="curator-mutant-") as folder:
        copy = Path(folder)
        plant(mutation, copy)
        env = dict(os.environ, CURATOR_STRICT_PLUGINS="1", PYTHONDONTWRITEBYTECODE="1")
        paths = [copy / "core", copy / "plugins" / "process-pool" / "src"]
        env["PYTHONPATH"] = os.pathsep.join(str(p) for p in paths)
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
             *mutation.tests],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )  # fmt: skip
        seconds = time.monotonic() - started
        last = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-200:]
        if proc.returncode not in (0, 1):
            raise SystemExit(f"{mutation.name}: pytest could not run ({proc.returncode}): {last}")
        return proc.returncode == 1, seconds, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", type=int, action="append", help="mutation number (1-based)")
    args = parser.parse_args()
    chosen = [(n, m) for n, m in enumerate(MUTATIONS, 1) if not args.only or n in args.only]
    missed = 0
    for number, mutation in chosen:
        hit, seconds, last = caught(mutation)
        missed += not hit
        verdict = "caught" if hit else "MISSED"
        print(f"{number}. {verdict:6}  {mutation.name}  ({seconds:.0f} s; {last})")
    print(f"{len(chosen) - missed} of {len(chosen)} mutations caught")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
