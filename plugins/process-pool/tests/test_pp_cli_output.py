"""``curator run --json`` on the process pool: stdout carries the JSON and nothing else."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from pp_support import subprocess_env

from curator.testing.probes import bypass_lines

TARGET = """\
print("the target prints while it is imported")
from curator.testing.probes import probe
pipeline = probe(4, {folder!r}, bypass=frozenset(range(4)), chatty=True)
"""


@pytest.mark.parametrize("capture", ["--capture", "--no-capture"])
@pytest.mark.parametrize("method", ["forkserver", "spawn"])
def test_what_workers_write_past_the_capture_goes_to_stderr(
    tmp_path: Path, method: str, capture: str
) -> None:
    (tmp_path / "noisy.py").write_text(TARGET.format(folder=str(tmp_path)))
    proc = subprocess.run(
        [sys.executable, "-m", "curator", "run", "noisy.py:pipeline", "-b", "process-pool",
         "-j", "2", "-o", f"start_method={method}", capture, "--json"],
        capture_output=True, text=True, cwd=tmp_path, env=subprocess_env(), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] == 4  # the whole of stdout is one JSON document
    assert "the target prints while it is imported" in proc.stderr
    for index in range(4):
        for line in bypass_lines(index):
            assert line in proc.stderr


LOGS_LATE = """
import sys
from curator import Sink, Source


class Numbers(Source[int]):
    def __len__(self):
        return 6

    def __getitem__(self, index):
        yield index


class ImportsLogging(Sink[int]):
    def __call__(self, items, index):
        had_logging = "logging" in sys.modules
        import logging

        logging.getLogger("late").warning("item %d logs", index)
        return [(index, had_logging) for _ in items]


pipeline = Numbers().write(ImportsLogging())
"""


def test_an_item_that_imports_logging_itself_has_its_records_captured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A worker starts without logging; capture's catcher is set up by the import.
    from curator import run

    (tmp_path / "logs_late.py").write_text(LOGS_LATE)
    monkeypatch.syspath_prepend(str(tmp_path))
    import logs_late

    result = run(logs_late.pipeline, backend="process-pool", jobs=2, reporter=None)
    first_items = [outcome.value[0] for outcome in result.outcomes if not outcome.value[0][1]]
    assert first_items, "logging was imported in every worker before its items ran"
    for outcome in result.outcomes:
        assert outcome.output is not None, outcome
        assert outcome.output.text == f"WARNING late: item {outcome.index} logs\n"
