"""``curator bench TARGET`` (issue 27): a user's own pipeline measured on each backend."""

from __future__ import annotations

import dataclasses
import json
import os
import textwrap
import time
from pathlib import Path
from typing import Any, ClassVar

import pytest
from core_support import curator, registry_with

import curator as curator_api
from curator.running.bench import bench
from curator.running.bench_configs import Config, configurations, not_measured, sample_indices
from curator.running.bench_scratch import scratch_copy
from curator.testing.probes import Numbers

EXAMPLE = "curator.examples.snapshots:pipeline"


def _json(proc: Any) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _sequential_into(scratch: Path, target: str, *more: str, cwd: Path) -> Any:
    """``curator bench TARGET -b sequential --scratch SCRATCH --json``: its report."""
    return _json(curator(
        "bench", target, *more, "-b", "sequential", "--scratch", str(scratch), "--json", cwd=cwd
    ))  # fmt: skip


def test_the_example_is_measured_on_each_backend_and_a_recommendation_made(
    tmp_path: Path,
) -> None:
    proc = curator(
        "bench", EXAMPLE, "--sample", "4", "-b", "sequential", "-b", "thread-pool", "-j", "2",
        "--json", cwd=tmp_path,
    )  # fmt: skip
    report = _json(proc)
    assert report["items"] == 200
    assert report["sample"] == 4
    rows = report["configurations"]
    assert [(row["backend"], row["jobs"]) for row in rows] == [
        ("sequential", 1),
        ("thread-pool", 2),
    ]
    for row in rows:
        assert row["items"] == 4
        assert row["failed"] == 0
        assert row["items_per_second"] > 0
        assert row["item_seconds"] > 0
        assert isinstance(row["worker_peak_rss"], int), row  # bytes
        assert row["worker_peak_rss"] > 0
        assert row["estimated_seconds"] > row["startup_seconds"] >= row["first_run_seconds"]
    assert rows[0]["speedup"] == 1.0
    assert report["recommended"] in rows
    # The example's writing stages (its sink, its dataset statistics) were pointed at a
    # scratch folder through their use_scratch hook: nothing lands where a run writes.
    assert list(tmp_path.iterdir()) == []
    assert "measuring sequential -j 1" in proc.stderr


def test_the_table_names_the_recommended_command(tmp_path: Path) -> None:
    proc = curator("bench", EXAMPLE, "--sample", "2", "-b", "sequential", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "items/s" in proc.stdout
    assert f"recommended: curator run {EXAMPLE} -b sequential -j 1" in proc.stdout
    assert "for 200 items" in proc.stdout


def test_the_samples_write_into_the_scratch_folder_asked_for(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    _sequential_into(scratch, EXAMPLE, "--sample", "3", cwd=tmp_path)
    written = sorted(p.name for p in scratch.rglob("snapshot_*.json"))
    assert len(written) == 3, written  # the three sampled snapshots, spread over 200
    assert (scratch / "stage-1" / "dataset-statistics.json").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scratch"]


WRITER = """
from dataclasses import dataclass
from pathlib import Path
from curator import Filter, Sink, Source
from curator.testing.probes import Numbers


class Writer(Sink):
    def __init__(self, where):
        self.where = where

    def __call__(self, items, index):
        for item in items:
            Path(self.where, f"{item}.txt").write_text(str(item))
        return index


class Quiet(Sink):
    def __call__(self, items, index):
        return sum(items)

    def use_scratch(self, folder):
        pass


class Failing(Sink):
    def __call__(self, items, index):
        raise ValueError(f"item {index} cannot be written")

    def use_scratch(self, folder):
        pass


class PathWriter(Sink):
    def __init__(self, output_path):
        self.output_path = Path(output_path)  # a Path: the bench must hand one back

    def __call__(self, items, index):
        self.output_path.mkdir(parents=True, exist_ok=True)
        for item in items:
            (self.output_path / f"{item}.txt").write_text(str(item))
        return index


class FolderWriter(Sink):
    def __init__(self, output_path):
        self.output_path = output_path  # a folder that exists: files go inside

    def __call__(self, items, index):
        for item in items:
            Path(self.output_path, f"{item}.txt").write_text(str(item))
        return index


class BadScratch(Quiet):
    def use_scratch(self, folder):
        raise OSError("no room there")


class Tally(Filter):
    # Writes its count when torn down: no finish or flush, but it says where it writes.

    def __init__(self, output_path):
        self.output_path = output_path
        self.seen = 0

    def setup(self, worker):
        self.seen = 0

    def __call__(self, items):
        for item in items:
            self.seen += 1
            yield item

    def teardown(self):
        with open(self.output_path, "w") as file:  # a str, a path, or bytes
            file.write(str(self.seen))


def writes():
    return Numbers(6).write(Writer("written"))


def tallied():
    return Numbers(6).filter(Tally("written/tally.txt")).write(Quiet())


def tallied_bytes():
    return Numbers(6).filter(Tally(b"written/tally.txt")).write(Quiet())


@dataclass(frozen=True)
class Frozen(Filter):
    # Its output_path cannot be pointed elsewhere: setting it raises.
    output_path: str

    def __call__(self, items):
        yield from items


def frozen():
    return Numbers(6).filter(Frozen("written/frozen.txt")).write(Quiet())


class Moody(Filter):
    # Asking where it writes raises: taken to write, and named.
    @property
    def output_path(self):
        raise RuntimeError("not decided yet")

    def __call__(self, items):
        yield from items


def moody():
    return Numbers(6).filter(Moody()).write(Quiet())


def path_writes():
    return Numbers(4).write(PathWriter("written/out"))


def bad_scratch():
    return Numbers(4).write(BadScratch())


def quiet():
    return Numbers(6).write(Quiet())


def into_folder():
    return Numbers(4).write(FolderWriter("written"))


def failing():
    return Numbers(6).write(Failing())


def empty():
    return Numbers(0).write(Quiet())


class StopsAtTheEnd(Filter):
    # Accumulating: its finish runs in the run's end, where this Ctrl-C lands.
    def __init__(self):
        self.seen = 0

    def __call__(self, items):
        for item in items:
            self.seen += 1
            yield item

    def reset(self):
        self.seen = 0

    def state(self):
        return self.seen

    def merge(self, states):
        self.seen = sum(states)
        return self.seen

    def finish(self):
        import os, signal
        os.kill(os.getpid(), signal.SIGINT)

    def use_scratch(self, folder):
        pass


def stops_at_the_end():
    return Numbers(8).filter(StopsAtTheEnd()).write(Quiet())


class TermsAtTheEnd(StopsAtTheEnd):
    def finish(self):
        import os, signal
        os.kill(os.getpid(), signal.SIGTERM)


def terms_at_the_end():
    return Numbers(8).filter(TermsAtTheEnd()).write(Quiet())


class SlowToFinish(StopsAtTheEnd):
    # Its finish takes half a second once per run, whatever the run's size.
    def finish(self):
        import time
        time.sleep(0.5)


def slow_to_finish():
    return Numbers(1000).filter(SlowToFinish()).write(Quiet())


class Caching(Source):
    # Reads, and writes a cache of what it read: it says where, with use_scratch.
    def __init__(self, count, cache):
        self.count = count
        self.cache = cache

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        Path(self.cache).mkdir(parents=True, exist_ok=True)
        Path(self.cache, f"{index}.cache").write_text(str(index))
        yield index

    def use_scratch(self, folder):
        self.cache = str(Path(folder, "cache"))


def cached():
    return Caching(6, "written/cache").write(Quiet())


def three():
    return Numbers(3).write(Quiet())
"""


@pytest.fixture
def targets(tmp_path: Path) -> Path:
    (tmp_path / "targets.py").write_text(textwrap.dedent(WRITER))
    (tmp_path / "written").mkdir()
    return tmp_path


@pytest.mark.parametrize(("target", "code"), [("stops_at_the_end", 130), ("terms_at_the_end", 143)])
def test_a_stop_as_a_configuration_records_its_end_stops_the_bench(
    targets: Path, target: str, code: int
) -> None:
    """It waited for the run's end, was dropped there, and the bench measured on: exit 0."""
    proc = curator("bench", f"targets.py:{target}", "-b", "sequential", "-b",
                   "thread-pool", "-j", "2", "--sample", "4", cwd=targets)  # fmt: skip
    assert proc.returncode == code, proc.stderr
    assert "curator: recording what finished before stopping" in proc.stderr
    assert proc.stderr.count("curator bench: measuring") == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_what_a_run_pays_once_at_its_end_is_not_counted_per_item(targets: Path) -> None:
    """A stage's finish of 0.5 s was spread over the 8 sampled items: 1,000 items were
    estimated at over a minute (8 items per second), where a real run takes about 1 s."""
    [row] = _json(curator("bench", "targets.py:slow_to_finish", "-b", "sequential", "--sample",
                          "8", "--json", cwd=targets))["configurations"]  # fmt: skip
    assert row["wind_down_seconds"] >= 0.5
    assert row["items_per_second"] > 100  # no-op items: thousands a second
    assert row["estimated_seconds"] < 20  # 0.5 s once, and 1,000 no-op items
    assert row["estimated_seconds"] >= row["wind_down_seconds"] + row["startup_seconds"]


def test_a_source_that_says_where_it_writes_is_pointed_at_scratch(targets: Path) -> None:
    """A source's use_scratch was never called: its cache landed where the run's does."""
    _sequential_into(targets / "scratch", "targets.py:cached", cwd=targets)
    cached = sorted(p.name for p in (targets / "scratch" / "source" / "cache").iterdir())
    assert cached == [f"{i}.cache" for i in range(6)]
    assert list((targets / "written").iterdir()) == []


def test_a_sink_that_cannot_be_pointed_at_scratch_is_refused_unless_allowed(
    targets: Path,
) -> None:
    proc = curator("bench", "targets.py:writes", "-b", "sequential", cwd=targets)
    assert proc.returncode == 2, proc.stderr
    assert "the sink (Writer) may write files" in proc.stderr
    assert "use_scratch(folder)" in proc.stderr
    assert "--allow-writes" in proc.stderr
    assert list((targets / "written").iterdir()) == []
    scratch = curator("bench", "targets.py:writes", "-b", "sequential", "--scratch", "scratch",
                      cwd=targets)  # fmt: skip
    assert scratch.returncode == 2, scratch.stderr
    assert not (targets / "scratch").exists()  # refused before any folder was made
    allowed = curator(
        "bench", "targets.py:writes", "-b", "sequential", "--allow-writes", "--json", cwd=targets
    )
    assert _json(allowed)["configurations"][0]["items"] == 6
    assert sorted(p.name for p in (targets / "written").iterdir()) == [f"{i}.txt" for i in range(6)]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["targets.py:quiet", "--sample", "0"], "the sample must hold at least 1 item, got 0"),
        (["targets.py:quiet", "-j", "0"], "jobs must not be 0: use 1 to run in-process"),
        (["targets.py:quiet", "-j", "2,-99"], "jobs=-99 counts back from this machine's"),
        (
            ["targets.py:quiet", "-b", "sequential", "-j", "2,4"],
            "backend 'sequential' runs one "
            "item at a time, so -j 2,4 needs a parallel backend among those named with -b",
        ),
        (["targets.py:quiet", "-j", "two"], "expected job counts like 2,4,8"),
        (["targets.py:quiet", "-b", "no-such-backend"], "no-such-backend"),
        # What was asked for first, then whether the sink may write outside scratch.
        (["targets.py:writes", "-b", "no-such-backend"], "unknown backend 'no-such-backend'"),
        (["targets.py:nothing"], "nothing"),
        (["targets.py:empty"], "the pipeline has no items to measure"),
        # The user's folder or stage, not curator: exit 2, no traceback.
        (["targets.py:quiet", "--scratch", "targets.py"], "cannot make the scratch folder"),
        (
            ["targets.py:bad_scratch"],
            "the sink (BadScratch): use_scratch('",
        ),
        (["targets.py:bad_scratch"], "raised OSError: no room there"),
        # Backend options are each backend's own: for the backends named, each takes them.
        (["targets.py:quiet", "-o", "copy_pipeline=false"], "need the backends they are for"),
        (
            ["targets.py:quiet", "-b", "thread-pool", "-b", "sequential", "-o", "copy_pipeline=0"],
            "unknown option 'copy_pipeline' for backend 'sequential'",
        ),
        (
            ["targets.py:quiet", "-b", "thread-pool", "-o", "copy_pipeline=maybe"],
            "option 'copy_pipeline' of backend 'thread-pool' must be",
        ),
        (["targets.py:quiet", "-b", "thread-pool", "-o", "copy_pipeline"], "expected KEY=VALUE"),
        # ... or one backend's own, named before the key.
        (
            ["targets.py:quiet", "-b", "sequential", "-o", "thread-pool:copy_pipeline=false"],
            "options are given for backend 'thread-pool', which -b does not name",
        ),
        (["targets.py:quiet", "-o", "no-such:copy_pipeline=1"], "no-such"),
        (["targets.py:quiet", "-o", ":copy_pipeline=1"], "expected BACKEND:KEY=VALUE"),
        (
            ["targets.py:quiet", "-o", "thread-pool:x=1", "-o", "thread_pool:x=0"],
            "option 'x' of backend 'thread-pool' is given twice",
        ),
        (
            ["targets.py:quiet", "-b", "thread-pool", "-o", "x=1", "-o", "thread-pool:x=0"],
            "option 'x' is given for every backend and for backend 'thread-pool'",
        ),
        (
            ["targets.py:quiet", "-o", "sequential:copy_pipeline=0"],
            "unknown option 'copy_pipeline' for backend 'sequential'",
        ),
        (["targets.py:quiet", "--scratch", ""], "--scratch needs a folder"),
        # A stage whose output_path cannot be set is named, not a traceback.
        (["targets.py:frozen"], "filter 1 (Frozen) (its output_path cannot be set"),
        (["targets.py:moody"], "filter 1 (Moody) (asking where it writes raised RuntimeError)"),
        # Nothing measured: every reason, each naming its configuration.
        (
            ["targets.py:quiet", "-b", "thread-pool", "-j", "1"],
            "nothing to measure: thread-pool -j 1: with one job it runs its items in this process",
        ),
        (
            ["targets.py:quiet", "-b", "thread-pool", "-j", "1,2", "--sample", "2"],
            "as sequential does; thread-pool -j 2: a sample of 2 items cannot keep 2 workers",
        ),
    ],
)
def test_bad_input_is_a_clear_error(targets: Path, arguments: list[str], message: str) -> None:
    proc = curator("bench", *arguments, cwd=targets)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    ("target", "folder"),
    [
        ("targets.py:path_writes", "out"),  # a Path attribute: the bench must hand one back
        # A folder that exists: its scratch twin was not made, and every item failed.
        ("targets.py:into_folder", "written"),
    ],
)
def test_an_output_path_is_pointed_at_scratch(targets: Path, target: str, folder: str) -> None:
    scratch = targets / "scratch"
    measured = _sequential_into(scratch, target, cwd=targets)["configurations"][0]
    assert (measured["items"], measured["failed"]) == (4, 0), measured
    written = sorted(p.name for p in (scratch / "stage-1" / folder).iterdir())
    assert written == [f"{i}.txt" for i in range(4)]
    assert list((targets / "written").iterdir()) == []


def test_failing_items_are_named_and_nothing_is_recommended(targets: Path) -> None:
    proc = curator("bench", "targets.py:failing", "-b", "sequential", "--sample", "2", cwd=targets)
    assert proc.returncode == 1, proc.stderr
    assert "2 of 2 sampled items failed" in proc.stderr
    assert "ValueError: item " in proc.stderr
    assert "cannot be written" in proc.stderr
    assert "nothing to recommend" in proc.stderr
    # The row is measured, but its estimate is no candidate: the table says why.
    assert "(2 failed)" in proc.stdout


@pytest.mark.parametrize(
    ("sample", "jobs", "reason"),
    [
        # Idle workers counted against the backend: --sample 1 -j 2 recommended sequential.
        ("3", "2", "-j 2: a sample of 3 items cannot keep 2 workers busy; give --sample 8 or more"),
        # Left out without a word before: one job runs in this process, as sequential.
        ("4", "1", "-j 1: with one job it runs its items in this process, as sequential does"),
    ],
)
def test_configurations_a_sample_cannot_weigh_are_named_not_measured(
    targets: Path, sample: str, jobs: str, reason: str
) -> None:
    proc = curator(
        "bench", "targets.py:quiet", "--sample", sample, "-b", "sequential", "-b",
        "thread-pool", "-j", jobs, "--json", cwd=targets,
    )  # fmt: skip
    report = _json(proc)
    assert [row["backend"] for row in report["configurations"]] == ["sequential"]
    assert report["not_measured"] == [{"backend": "thread-pool", "reason": reason}]
    assert f"not measured: thread-pool ({reason})" in proc.stderr


def test_a_sample_too_small_for_the_only_backend_is_an_error(targets: Path) -> None:
    alone = curator("bench", "targets.py:quiet", "--sample", "3", "-b", "thread-pool", "-j",
                    "2", cwd=targets)  # fmt: skip
    assert alone.returncode == 2, alone.stderr
    assert "cannot keep 2 workers busy; give --sample 8 or more" in alone.stderr
    # A larger sample cannot help a pipeline that has no more items: it said to give one.
    small = curator("bench", "targets.py:three", "--sample", "8", "-b", "thread-pool", "-j",
                    "2", cwd=targets)  # fmt: skip
    assert small.returncode == 2, small.stderr
    assert "-j 2: the pipeline's 3 items cannot keep 2 workers busy" in small.stderr
    assert "--sample" not in small.stderr


def test_the_sample_is_spread_over_the_whole_pipeline() -> None:
    assert sample_indices(1000, 4) == [125, 375, 625, 875]
    assert sample_indices(3, 10) == [0, 1, 2]
    assert sample_indices(10, 1) == [5]


def test_bench_is_a_built_in_plugin_switched_off_by_name(tmp_path: Path) -> None:
    """The command comes through the command hook, like status and logs: listed, and when
    disabled by name, `curator bench` says which plugin it needs (exit 2)."""
    from core_support import subprocess_env

    listed = curator("plugins", "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert rows["builtin-bench"]["status"] == "loaded"
    assert rows["builtin-bench"]["provides"] == ["command:bench"]
    env = subprocess_env(CURATOR_DISABLE_PLUGINS="builtin-bench")
    refused = curator("bench", EXAMPLE, "-b", "sequential", env=env, cwd=tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert "curator bench comes with the built-in plugin builtin-bench, which is disabled" in (
        refused.stderr
    )
    assert list(tmp_path.iterdir()) == []


class _Elsewhere(curator_api.Backend):
    """Stands for a batch backend: its items would run as jobs of a cluster."""

    name = "far-away"
    capabilities = curator_api.Capabilities(parallel=True, runs_elsewhere=True)

    def prepare(self, work: curator_api.Work) -> None:
        raise curator_api.UsageError("the cluster's controller does not answer")

    def execute(self, work: curator_api.Work, indices: Any) -> Any:
        raise AssertionError("a bench never gets this far")


class _Quiet(curator_api.Sink[int]):
    """Writes nothing."""

    def __call__(self, items: Any, index: int) -> list[str]:
        return [str(item) for item in items]


class _Here(curator_api.Backend):
    name = "close-by"
    capabilities = curator_api.Capabilities(parallel=True)

    def execute(self, work: curator_api.Work, indices: Any) -> Any:
        for index in indices:
            yield work(index)


def test_batch_backends_are_measured_only_when_asked_for(tmp_path: Path) -> None:
    registry = registry_with(_Here, _Elsewhere)
    measured = {config.backend for config in configurations(registry, None, [2], 4)}
    assert "close-by" in measured
    assert "far-away" not in measured
    assert not_measured(registry, None) == [
        ("far-away", "its items run as batch jobs; measure it with -b far-away")
    ]
    asked = configurations(registry, ["far-away"], [1, 2], 4)
    # One job of a batch backend is one job elsewhere, not this process: measured too.
    assert [(c.backend, c.jobs) for c in asked] == [("far-away", 1), ("far-away", 2)]
    assert not_measured(registry, ["far-away"]) == []
    # Asked for, and out of reach: the error names the configuration.
    with pytest.raises(curator_api.UsageError) as caught:
        bench(Numbers(8).write(_Quiet()), tmp_path, sample=4, backends=["far-away"], jobs=[2],
              allow_writes=True, registry=registry)  # fmt: skip
    assert str(caught.value) == (
        "measuring far-away -j 2: the cluster's controller does not answer"
    )


@dataclasses.dataclass(frozen=True)
class _JobsOptions:
    job_folder: str | None = None


class _Jobs(curator_api.Backend):
    """Stands for a batch backend with a jobs' folder; runs here, noting the folder it got."""

    name = "jobs-here"
    capabilities = curator_api.Capabilities(parallel=True, runs_elsewhere=True)
    Options = _JobsOptions
    folders: ClassVar[list[str | None]] = []

    def execute(self, work: curator_api.Work, indices: Any) -> Any:
        _Jobs.folders.append(self.options.job_folder)
        for index in indices:
            yield work(index)


def test_a_batch_backends_jobs_keep_their_folder_in_the_scratch_unless_one_is_given(
    tmp_path: Path,
) -> None:
    """Slurm's jobs left curator-jobs/run-* in the working directory after every bench."""
    registry = registry_with(_Jobs, _Here)
    _Jobs.folders.clear()
    bench(Numbers(8).write(_Quiet()), tmp_path, sample=4, backends=["jobs-here", "close-by"],
          jobs=[2], allow_writes=True, registry=registry)  # fmt: skip
    assert _Jobs.folders == [str(tmp_path / "jobs")]
    _Jobs.folders.clear()
    bench(Numbers(8).write(_Quiet()), tmp_path, sample=4, backends=["jobs-here"], jobs=[2],
          allow_writes=True, registry=registry,
          backend_options={"jobs-here": {"job_folder": "/shared/jobs"}})  # fmt: skip
    assert _Jobs.folders == ["/shared/jobs"]


class _MakesItsFolder(curator_api.Sink[int]):
    """Its output_path's setter makes the folder; one that holds output already is refused."""

    def __init__(self, path: str) -> None:
        self._path = path

    @property
    def output_path(self) -> str:
        return self._path

    @output_path.setter
    def output_path(self, path: str) -> None:
        if Path(path).is_dir() and any(Path(path).iterdir()):
            raise ValueError(f"{path} holds output already")
        Path(path).mkdir(parents=True, exist_ok=True)
        self._path = path

    def __call__(self, items: Any, index: int) -> list[str]:
        return [str(item) for item in items]


def test_a_stages_setter_is_called_with_the_scratch_path_only(tmp_path: Path) -> None:
    """Asked whether it could be set, with the real path: the real folder was made (or the
    setter refused what holds the real run's output, and the bench refused the stage)."""
    fresh, full = tmp_path / "fresh", tmp_path / "full"
    full.mkdir()
    (full / "part-0.txt").write_text("the real run's")
    for real in (fresh, full):
        copied = scratch_copy(Numbers(4).write(_MakesItsFolder(str(real))), tmp_path / "s", False)
        assert Path(copied.sink.output_path) == tmp_path / "s" / "stage-1" / real.name
    assert not fresh.exists()


def test_options_for_a_batch_backend_the_bench_leaves_out_are_refused(tmp_path: Path) -> None:
    """Without -b, a batch backend is not measured: its options were dropped, silently."""
    registry = registry_with(_Jobs, _Here)
    with pytest.raises(curator_api.UsageError) as caught:
        bench(Numbers(8).write(_Quiet()), tmp_path, sample=4, jobs=[2], allow_writes=True,
              registry=registry,
              backend_options={"jobs-here": {"job_folder": "/shared"}})  # fmt: skip
    assert str(caught.value) == (
        "options are given for backend 'jobs-here', whose items run as batch jobs: the bench "
        "measures it only when named (-b jobs-here)"
    )


def test_bench_through_the_api_refuses_what_is_not_a_pipeline(tmp_path: Path) -> None:
    with pytest.raises(curator_api.UsageError, match="expected a curator Pipeline, got int"):
        bench(42, tmp_path, registry=curator_api.default_registry())  # type: ignore[arg-type]


class _SlowFirst(curator_api.Backend):
    """A backend whose first run in a process pays once what later runs do not (a fork
    server's start, an engine's imports)."""

    name = "slow-first"
    capabilities = curator_api.Capabilities(parallel=True)
    started = False

    def execute(self, work: curator_api.Work, indices: Any) -> Any:
        if not _SlowFirst.started:
            _SlowFirst.started = True
            time.sleep(1.0)
        for index in indices:
            yield work(index)


def test_what_a_first_run_pays_once_is_carried_by_every_configuration(tmp_path: Path) -> None:
    """Measured apart (one item first), not by whichever configuration runs first."""
    _SlowFirst.started = False  # as in a fresh process
    registry = registry_with(_SlowFirst)
    rows = bench(
        Numbers(8).write(_Quiet()), tmp_path, sample=6, backends=["slow-first", "slow-first"],
        jobs=[2, 3], allow_writes=True, registry=registry,
    )  # fmt: skip
    assert [(row.config.backend, row.config.jobs) for row in rows] == [
        ("slow-first", 2), ("slow-first", 3)
    ]  # fmt: skip  # asked for twice, measured once
    assert [row.failed for row in rows] == [0, 0]
    for row in rows:
        assert row.once > 0.5, row  # the second's run did not pay it, yet it is carried
        assert row.startup >= row.once
        assert row.estimate(8) > row.once
    json_row = rows[0].to_json(None, 8)
    assert json_row["first_run_seconds"] == round(rows[0].once, 6)


class _Refuses(curator_api.Backend):
    """A backend that cannot take this pipeline (a pool that cannot pickle it)."""

    name = "refuses"
    capabilities = curator_api.Capabilities(parallel=True)

    def prepare(self, work: curator_api.Work) -> None:
        raise curator_api.UsageError("refuses needs a picklable pipeline")

    def execute(self, work: curator_api.Work, indices: Any) -> Any:
        raise AssertionError("never reached")


def test_a_backend_that_refuses_the_pipeline_is_left_out_and_the_rest_measured(
    tmp_path: Path,
) -> None:
    """One backend's refusal ended the whole bench with no table (a hostile user found it)."""
    registry = registry_with(_Refuses)
    skipped: list[tuple[str, str]] = []
    rows = bench(
        Numbers(8).write(_Quiet()), tmp_path, sample=4, backends=["refuses", "thread-pool"],
        jobs=[2], allow_writes=True, registry=registry,
        skipped=lambda backend, why: skipped.append((backend, why)),
    )  # fmt: skip
    assert [(row.config.backend, row.failed) for row in rows] == [("thread-pool", 0)]
    assert skipped == [("refuses", "refuses needs a picklable pipeline")]
    with pytest.raises(curator_api.UsageError) as caught:
        bench(Numbers(8).write(_Quiet()), tmp_path, sample=4, backends=["refuses"], jobs=[2],
              allow_writes=True, registry=registry)  # fmt: skip
    assert str(caught.value) == "measuring refuses -j 2: refuses needs a picklable pipeline"


def test_the_wall_time_carries_what_the_first_run_pays_too(tmp_path: Path) -> None:
    _SlowFirst.started = False
    (row,) = bench(
        Numbers(4).write(_Quiet()), tmp_path, sample=4, backends=["slow-first"], jobs=[2],
        allow_writes=True, registry=registry_with(_SlowFirst),
    )  # fmt: skip
    assert row.wall >= row.startup >= row.once > 0.5


@pytest.mark.parametrize("target", ["targets.py:tallied", "targets.py:tallied_bytes"])
def test_a_filter_that_says_where_it_writes_is_pointed_at_scratch(
    targets: Path, target: str
) -> None:
    """A filter writing in teardown(), with an output_path and no finish or flush."""
    scratch = targets / "scratch"
    _sequential_into(scratch, target, "--sample", "3", cwd=targets)
    # Torn down after the first run's single item, then after the sample's three.
    assert (scratch / "stage-1" / "tally.txt").read_text() == "3"
    assert list((targets / "written").iterdir()) == []


def test_backend_options_reach_each_run_and_the_recommendation(targets: Path) -> None:
    proc = curator(
        "bench", "targets.py:quiet", "--sample", "4", "-b", "thread-pool", "-j", "2", "-o",
        "copy_pipeline=false", cwd=targets,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "-b thread-pool -j 2 -o copy_pipeline=false  (about" in proc.stdout  # as typed
    report = _json(curator(
        "bench", "targets.py:quiet", "--sample", "4", "-b", "thread-pool", "-j", "2", "-o",
        "copy_pipeline=false", "--json", cwd=targets,
    ))  # fmt: skip
    assert report["options"] == {"copy_pipeline": "false"}


def test_job_counts_read_as_curator_run_reads_them(targets: Path) -> None:
    """-j -1 (every CPU, as curator run -j -1 says) was refused: job counts must be >= 1."""
    cpus = os.cpu_count() or 1
    if cpus < 2:
        pytest.skip("every CPU is one job here: thread-pool is not measured at one")
    report = _json(curator("bench", "targets.py:quiet", "--sample", str(4 * cpus), "-b",
                           "thread-pool", "-j", "-1", "--json", cwd=targets))  # fmt: skip
    assert [row["jobs"] for row in report["configurations"]] == [cpus]


def test_one_backends_own_options_leave_the_others_measured_as_they_are(targets: Path) -> None:
    """-o NAME:KEY=VALUE: sequential, which takes no option, is measured beside (the speedups)."""
    report = _json(curator(
        "bench", "targets.py:quiet", "--sample", "4", "-b", "sequential", "-b", "thread-pool",
        "-j", "2", "-o", "thread-pool:copy_pipeline=false", "--json", cwd=targets,
    ))  # fmt: skip
    assert report["options"] == {}
    assert report["backend_options"] == {"thread-pool": {"copy_pipeline": "false"}}
    measured = {row["backend"] for row in report["configurations"]}
    assert measured == {"sequential", "thread-pool"}
    assert all(row["speedup"] is not None for row in report["configurations"])


class _Chunky(curator_api.Backend):
    """A parallel backend with a chunk size: measured at several unless one is asked for."""

    name = "chunky"
    capabilities = curator_api.Capabilities(parallel=True)

    @dataclasses.dataclass(frozen=True)
    class Options:
        chunksize: int | None = None
        tag: str = ""

    seen: ClassVar[list[Any]] = []

    def execute(self, work: curator_api.Work, indices: Any) -> Any:
        type(self).seen.append(self.options)
        for index in indices:
            yield work(index)


def test_backend_options_reach_every_run_and_a_chunk_size_asked_for_is_the_only_one(
    tmp_path: Path,
) -> None:
    registry = registry_with(_Chunky)
    assert [c.chunksize for c in configurations(registry, ["chunky"], [2], 16)] == [None, 1, 2]
    asked = configurations(registry, ["chunky"], [2], 16, {"chunky": {"chunksize": 3}})
    assert asked == [Config("chunky", 2, 3)]
    _Chunky.seen.clear()
    rows = bench(
        Numbers(8).write(_Quiet()), tmp_path, sample=4, backends=["chunky"], jobs=[2],
        options={"chunksize": "3", "tag": "007"}, allow_writes=True, registry=registry,
    )  # fmt: skip
    assert [row.config for row in rows] == [Config("chunky", 2, 3)]
    # The first run's single item, then the sample: each converted by the backend's schema.
    assert _Chunky.seen == [_Chunky.Options(3, "007")] * 2
    _Chunky.seen.clear()
    rows = bench(
        Numbers(8).write(_Quiet()), tmp_path, sample=4, backends=["chunky", "sequential"],
        jobs=[2], backend_options={"chunky": {"tag": "7"}},
        allow_writes=True, registry=registry,
    )  # fmt: skip
    assert {row.config.backend for row in rows} == {"chunky", "sequential"}
    assert set(_Chunky.seen) == {_Chunky.Options(None, "7"), _Chunky.Options(1, "7"),
                                 _Chunky.Options(2, "7")}  # fmt: skip


class _Loses(curator_api.Backend):
    """Breaks the run contract: the last index of every call never comes back."""

    name = "loses"
    capabilities = curator_api.Capabilities(parallel=True)

    def execute(self, work: curator_api.Work, indices: Any) -> Any:
        for index in list(indices)[:-1]:
            yield work(index)


def test_a_plugin_backend_that_breaks_the_contract_is_named_and_the_rest_measured(
    tmp_path: Path,
) -> None:
    """It ended the bench with a traceback (exit 3); a run names it as the plugin's bug,
    and a built-in backend's as curator's own (an internal error)."""
    registry = registry_with(_Here, _Loses)

    def bench_loses() -> list[Any]:
        return bench(
            Numbers(8).write(_Quiet()), tmp_path, sample=4, backends=["loses", "close-by"],
            jobs=[2], allow_writes=True, registry=registry,
            skipped=lambda backend, why: left_out.append((backend, why)),
        )  # fmt: skip

    left_out: list[tuple[str, str]] = []
    with pytest.raises(curator_api.BackendContractError):  # built in here: curator's bug
        bench_loses()
    registry.backends["loses"].plugin.distribution = "curator-backend-loses"
    registry.backends["loses"].plugin.version = "0.1"
    rows = bench_loses()
    assert [row.config.backend for row in rows] == ["close-by"]
    ((backend, why),) = left_out
    assert backend == "loses"
    assert "finished without an outcome for 1 indices" in why
    assert why.endswith("that is a bug in plugin 'test' (curator-backend-loses 0.1)")
