"""``curator bench -b local-jobs``: a batch backend's sample leaves nothing where it ran."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

TARGET = textwrap.dedent(
    """
    from pathlib import Path

    from curator import Sink
    from curator.testing.probes import Numbers

    NOTES = Path(__file__).with_name("scratch-folders.txt")


    class NotesItsScratch(Sink[int]):
        folder = ""

        def use_scratch(self, folder):
            self.folder = str(folder)
            with open(NOTES, "a") as notes:
                notes.write(f"{folder}\\n")

        def __call__(self, items, index):
            for _ in items:
                pass
            return [self.folder]


    pipeline = Numbers(8).write(NotesItsScratch())
    """
)


def _bench(cwd: Path, *more: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-m", "curator", "bench", "target:pipeline", "-b", "local-jobs",
         "-j", "2", "--sample", "4", "--json", *more],
        capture_output=True, text=True, check=False, cwd=cwd,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    return report


def _place(tmp_path: Path) -> Path:
    place = tmp_path / "place"
    place.mkdir()
    (place / "target.py").write_text(TARGET)
    return place


def test_the_scratch_folder_is_made_where_the_jobs_run_and_removed(tmp_path: Path) -> None:
    """Jobs run on other machines: a scratch folder in /tmp is one they do not reach."""
    place = _place(tmp_path)
    report = _bench(place)
    assert report["recommended"] is not None
    scratch = {Path(line) for line in (place / "scratch-folders.txt").read_text().splitlines()}
    assert len(scratch) == 1
    (folder,) = scratch
    assert folder.parent.parent == place  # <place>/curator-bench-XXXX/stage-1
    assert folder.parent.name.startswith("curator-bench-")
    assert sorted(p.name for p in place.iterdir() if p.name != "__pycache__") == [
        "scratch-folders.txt", "target.py",
    ]  # fmt: skip


def test_the_jobs_folder_goes_in_the_scratch_folder_asked_for(tmp_path: Path) -> None:
    place, scratch = _place(tmp_path), tmp_path / "scratch"
    _bench(place, "--scratch", str(scratch))
    assert list((scratch / "jobs").glob("run-*/round-1/tasks"))
    assert sorted(p.name for p in place.iterdir() if p.name != "__pycache__") == [
        "scratch-folders.txt", "target.py",
    ]  # fmt: skip


def test_a_jobs_folder_given_is_where_the_jobs_go(tmp_path: Path) -> None:
    place, scratch, jobs = _place(tmp_path), tmp_path / "scratch", tmp_path / "jobs"
    report = _bench(place, "--scratch", str(scratch), "-o", f"local-jobs:job_folder={jobs}")
    assert list(jobs.glob("run-*/round-1/tasks"))
    assert not (scratch / "jobs").exists()
    # As typed: the recommendation's options hold it, and nothing the bench chose.
    assert report["backend_options"] == {"local-jobs": {"job_folder": str(jobs)}}
