"""Plant known bugs, one at a time, and check that the test suites catch each.

Usage::

    python benchmarks/mutations.py            # every mutation (tox -e mutations)
    python benchmarks/mutations.py --only 3   # one of them
    python benchmarks/mutations.py --control  # each mutation's tests pass unmutated first
    python benchmarks/mutations.py --list

Each mutation is a small change to a copy of the sources (never to the
checkout); the tests named for it run against that copy (it comes first on
``PYTHONPATH``, ahead of any installed curator). A mutation is *caught* when
at least one of those tests fails. Needs a development install of the core and
both plugins (``pip install -e . -e ./plugins/process-pool -e ./plugins/dask``)
and the test dependencies; run from the repository root. ``tests/test_mutations.py``
checks, in the core suite, that every mutation can still be planted.
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
        "core/curator/checkpoint/fingerprint.py",
        "for n, f in enumerate(pipeline.filters, 1)",
        "for n, f in enumerate(pipeline.filters[:0], 1)",
        ("tests/test_fingerprint.py",),
    ),
    Mutation(
        "the process pool enforces timeouts at 10x the limit",
        "plugins/process-pool/src/curator_backend_process_pool/limits.py",
        "if now - since[slot] > limit and current[slot] == doing:",
        "if now - since[slot] > 10 * limit and current[slot] == doing:",
        (
            "plugins/process-pool/tests/test_pp_reliability.py::"
            "test_a_hung_item_times_out_its_worker_is_replaced_and_the_run_goes_on",
        ),
    ),
    Mutation(
        "the grace period lasts 100x longer",
        "core/curator/running/interrupts.py",
        "self._timer = threading.Timer(self.grace, self._grace_over)",
        "self._timer = threading.Timer(self.grace * 100, self._grace_over)",
        ("tests/test_conformance.py", "-k", "grace_period"),
    ),
    Mutation(
        "SIGTERM is handled like a first Ctrl-C (graceful)",
        "core/curator/running/interrupts.py",
        "self._previous = _take_over(self._on_sigint, self._on_sigterm)",
        "self._previous = _take_over(self._on_sigint, self._on_sigint)",
        ("tests/test_conformance.py", "-k", "sigterm"),
    ),
    Mutation(
        "chunk sizes without tail balancing",
        "core/curator/backends/dispatch.py",
        "fair = math.ceil(remaining / (4 * self.workers))",
        "fair = remaining",
        ("tests/test_dispatch.py",),
    ),
    # Issue 29: behaviours the second round of hand-planted bugs found unguarded.
    Mutation(
        "the final merge forgets to reset the caller's stage first (29.1)",
        "core/curator/model/state.py",
        'if not self._call(stage, "reset"):',
        "if False:",
        ("tests/test_conformance.py", "-k", "without_ok_items_leaves_the_stage_reset"),
    ),
    Mutation(
        "a resume adds the partials of a batch a later run redid (29.2)",
        "core/curator/checkpoint/stored_states.py",
        "taken = ok and row_id in stored and len(current) == len(ok)",
        "taken = ok and row_id in stored",
        ("tests/test_conformance.py", "-k", "two_runs_on_one_checkpoint_counts_each_partial_once"),
    ),
    Mutation(
        "a resume with another backend keeps the recorded jobs (29.4)",
        "core/curator/cli/remembered.py",
        "base = dataclasses.replace(base, jobs=RunSettings().jobs, options={})",
        "base = dataclasses.replace(base, options={})",
        (
            "tests/test_cli_remembers.py::"
            "test_resume_with_another_backend_drops_the_old_backends_options_and_jobs",
        ),
    ),
    Mutation(
        "a checkpoint of a newer schema is told the old schema's story (29.8)",
        "core/curator/checkpoint/meta.py",
        "if int(schema) > SCHEMA_VERSION:",
        "if int(schema) > SCHEMA_VERSION + 1:",
        (
            "tests/legacy/test_checkpoint_schemas.py::"
            "test_a_checkpoint_of_another_schema_is_refused_by_every_command_and_left_untouched",
        ),
    ),
    Mutation(
        "the HTML report stops escaping what a failed item printed (29.5)",
        "plugins/report/src/curator_report/html.py",
        "<pre>{_e(item.output.get('text', ''))}</pre>",
        "<pre>{item.output.get('text', '')}</pre>",
        (
            "plugins/report/tests/test_report.py::"
            "test_the_html_page_escapes_what_items_print_and_raise",
        ),
    ),
    Mutation(
        "the reporter check ignores hooks inherited from a mixin (29.6)",
        "core/curator/plugin_host/contract.py",
        "for attr in sorted(dir(cls)):",
        "for attr in sorted(vars(cls)):",
        ("tests/test_plugins.py::test_a_misspelled_hook_breaks_a_reporter_wherever_it_is_defined",),
    ),
    Mutation(
        "a numeric option accepts a string default that would convert (29.9)",
        "core/curator/plugin_host/options.py",
        "if isinstance(default, str) and not isinstance(converted, str):",
        "if False:",
        (
            "tests/test_options.py::test_a_default_of_the_wrong_type_is_refused_even_when_it_would_convert",
        ),
    ),
    Mutation(
        "dask blames a lost chunk that never began on a dead worker (29.7)",
        "plugins/dask/src/curator_backend_dask/chunks.py",
        "if not began:\n            return False",
        "if not began:\n            return True",
        (
            "plugins/dask/tests/test_dask_deaths.py::"
            "test_a_chunk_queued_on_a_dead_worker_runs_again_unblamed",
        ),
    ),
    Mutation(
        "the memory limit reads a worker's virtual size instead of its RSS (29.3)",
        "plugins/process-pool/src/curator_backend_process_pool/memory.py",
        "return int(statm.read().split()[1]) * _PAGE",
        "return int(statm.read().split()[0]) * _PAGE",
        (
            "plugins/process-pool/tests/test_pp_memory.py::"
            "test_memory_mapped_but_never_touched_is_not_counted",
            "plugins/process-pool/tests/test_pp_memory.py::"
            "test_rss_reads_the_resident_memory_of_a_real_process",
        ),
    ),
    Mutation(
        "the ordered stream releases one waiting outcome per incoming one (29.10)",
        "core/curator/running/streaming.py",
        "while next_up in waiting:",
        "if next_up in waiting:",
        (
            "tests/test_stream.py::"
            "test_ordered_releases_every_waiting_outcome_as_soon_as_its_turn_comes",
        ),
    ),
    Mutation(
        "the shard merge takes the shards of items not recorded ok (25.2)",
        "core/curator/model/shards.py",
        "                if ok(index):",
        "                if ok(index) or True:",
        (
            "plugins/process-pool/tests/test_pp_conformance.py",
            "-k",
            "TestProcessPool and not Spawn and shard_rows",
        ),
    ),
    Mutation(
        "a run reads a checkpoint another run is creating without its lock ('creating')",
        "core/curator/cli/remembered.py",
        "    lock = take_lock(path)",
        "    lock = None",
        (
            "tests/test_checkpoint_safety.py::"
            "test_a_checkpoint_another_run_is_creating_is_in_use_not_broken",
        ),
    ),
]


# The packages a mutant is planted in: copied whole, first on the tests' PYTHONPATH.
SOURCES = ("core", "plugins/process-pool/src", "plugins/dask/src", "plugins/report/src")


def problems(mutation: Mutation, root: Path = ROOT) -> list[str]:
    """What keeps ``mutation`` from being planted and tested as written (empty if nothing).

    The text to replace must occur exactly once in its file, and the tests named for
    it must exist: a file that moved or a line that changed makes the mutant
    meaningless, so ``tests/test_mutations.py`` runs this for every mutation.
    """
    found = []
    target = root / mutation.path
    if not target.is_file():
        found.append(f"{mutation.path} does not exist")
    elif (count := target.read_text().count(mutation.before)) != 1:
        found.append(f"the text to mutate occurs {count} times in {mutation.path}, not once")
    for test in mutation.tests:
        if test.startswith("-"):
            break  # pytest options (-k ...) follow the test paths
        if not (root / test.split("::")[0]).is_file():
            found.append(f"the test {test} does not exist")
    if not any(mutation.path.startswith(f"{source}/") for source in SOURCES):
        found.append(f"{mutation.path} is not under one of {SOURCES}")
    return found


def copy_sources(into: Path) -> None:
    """Copy the packages of :data:`SOURCES` into ``into``."""
    for source in SOURCES:
        shutil.copytree(ROOT / source, into / source, ignore=shutil.ignore_patterns("__pycache__"))


def plant(mutation: Mutation, into: Path) -> None:
    """Copy the sources into ``into`` with ``mutation`` applied."""
    wrong = problems(mutation)
    if wrong:
        raise SystemExit(f"{mutation.name}: {'; '.join(wrong)}")
    copy_sources(into)
    target = into / mutation.path
    target.write_text(target.read_text().replace(mutation.before, mutation.after))


def run_tests(mutation: Mutation, planted: bool) -> tuple[bool, float, str]:
    """Run the mutation's tests on a copy (mutated if ``planted``); true if all pass."""
    with tempfile.TemporaryDirectory(prefix="curator-mutant-") as folder:
        copy = Path(folder)
        if planted:
            plant(mutation, copy)
        else:
            copy_sources(copy)
        env = dict(os.environ, CURATOR_STRICT_PLUGINS="1", PYTHONDONTWRITEBYTECODE="1")
        env["PYTHONPATH"] = os.pathsep.join(str(copy / source) for source in SOURCES)
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
        return proc.returncode == 0, seconds, last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", type=int, action="append", help="mutation number (1-based)")
    parser.add_argument(
        "--control",
        action="store_true",
        help="first run each mutation's tests on an unmutated copy: they must pass",
    )
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    args = parser.parse_args()
    chosen = [(n, m) for n, m in enumerate(MUTATIONS, 1) if not args.only or n in args.only]
    if args.list:
        for number, mutation in chosen:
            print(f"{number}. {mutation.name}  ({mutation.path})")
        return
    missed = 0
    started = time.monotonic()
    for number, mutation in chosen:
        if args.control:
            passed, seconds, last = run_tests(mutation, planted=False)
            if not passed:
                raise SystemExit(f"{number}. {mutation.name}: the control run failed: {last}")
        survived, seconds, last = run_tests(mutation, planted=True)
        missed += survived
        verdict = "MISSED" if survived else "caught"
        print(f"{number}. {verdict:6}  {mutation.name}  ({seconds:.0f} s; {last})", flush=True)
    total = time.monotonic() - started
    print(f"{len(chosen) - missed} of {len(chosen)} mutations caught ({total:.0f} s)")
    sys.exit(1 if missed else 0)


if __name__ == "__main__":
    main()
