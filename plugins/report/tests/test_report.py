"""The run report: its model from a checkpoint, the HTML page, the JSON, `curator report`."""

from __future__ import annotations

import array
import dataclasses
import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import curator_report.model as report_model
import pytest
from curator_report.html import render
from curator_report.model import TIME_BINS, build
from report_support import curator, shown_while_running, subprocess_env

from curator import Sink, run
from curator.model.measures import stage_names
from curator.testing.probes import Numbers, chatter, probe


def test_the_report_of_a_run_with_failures(tmp_path: Path) -> None:
    store = tmp_path / "run.sqlite"
    pipeline = probe(12, tmp_path, chatty=True, sleep=0.002, fail=frozenset({3, 7}))
    result = run(pipeline, backend="thread-pool", jobs=3, checkpoint=store,
                 on_error="continue", reporter=None)  # fmt: skip
    report = build(store)
    assert report.counts == {"failed": 2, "ok": 10}
    assert report.total == report.recorded == 12
    assert report.state == "finished"
    assert report.drawn
    assert {lane.worker for lane in report.lanes} == {o.worker for o in result.outcomes}
    assert sum(lane.count for lane in report.lanes) == 12
    assert [s.stage for s in report.stages] == list(stage_names(pipeline))
    assert all(s.items == 12 for s in report.stages)
    seconds = [item.seconds for item in report.slowest]
    assert seconds == sorted(seconds, reverse=True)
    assert sum(count for _, _, count in report.durations) == 12
    assert [f.index for f in report.failures] == [3, 7]
    failure = report.failures[0]
    assert failure.error is not None
    assert failure.error["type"] == "ValueError"
    assert "probe: item 3 fails" in failure.error["traceback"]
    assert failure.output is not None
    assert chatter(3)[0] in failure.output["text"]


def test_the_html_page_is_self_contained_with_a_lane_per_worker(tmp_path: Path) -> None:
    store = tmp_path / "run.sqlite"
    run(probe(9, tmp_path, chatty=True, sleep=0.002, fail=frozenset({4})), backend="thread-pool",
        jobs=3, checkpoint=store, on_error="continue", reporter=None)  # fmt: skip
    report = build(store)
    page = render(report)
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"(src|href)=|https?://|<script|@import|url\(", page)  # nothing fetched
    assert page.count('<g class="lane"') == len(report.lanes)
    assert page.count('<details class="failure">') == 1
    assert "item 4 says hello" in page
    assert "probe: item 4 fails" in page


def test_beyond_the_drawn_limit_the_timeline_aggregates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_model, "DRAWN_ITEMS", 20)
    store = tmp_path / "run.sqlite"
    run(probe(200, tmp_path), backend="thread-pool", jobs=2, checkpoint=store, reporter=None)
    report = build(store)
    assert not report.drawn
    for lane in report.lanes:
        assert lane.items == []
        assert len(lane.busy) == TIME_BINS
        assert all(0.0 <= share <= 1.0 for share in lane.busy)
    page = render(report)
    rects = page.count("<rect")
    assert rects <= len(report.lanes) * TIME_BINS + len(report.durations)  # not one per item


def test_a_checkpoint_without_stage_names_reports_without_stages(tmp_path: Path) -> None:
    store = tmp_path / "run.sqlite"
    run(probe(3, tmp_path), checkpoint=store, reporter=None)
    with closing(sqlite3.connect(store)) as db, db:
        db.execute("DELETE FROM meta WHERE key = 'stages'")  # as written before they were kept
    report = build(store)
    assert report.stages == []
    assert report.counts == {"ok": 3}
    assert "No metrics recorded" in render(report)


def test_curator_report_in_the_terminal_as_json_and_as_html(tmp_path: Path) -> None:
    ran = curator(
        "run", "report_pipelines:chatty", "--keep-going", "--reporter", "none", cwd=tmp_path
    )
    assert ran.returncode == 1, ran.stderr
    shown = curator("report", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "6 of 6: 1 failed, 5 ok" in shown.stdout
    assert "time per stage" in shown.stdout
    data = json.loads(curator("report", "--json", cwd=tmp_path).stdout)
    assert data["counts"] == {"failed": 1, "ok": 5}
    assert [f["index"] for f in data["failures"]] == [2]
    source = data["stages"][0]
    assert source["stage"].endswith("(source)")
    assert source["items"] >= 1
    assert source["total"] >= 0.0
    page = tmp_path / "report.html"
    wrote = curator("report", "--html", str(page), cwd=tmp_path)
    assert wrote.returncode == 0, wrote.stderr
    assert f"wrote {page}: 6 items" in wrote.stdout
    assert '<g class="lane" data-worker="main">' in page.read_text()


def test_curator_report_passes_over_a_newer_file_that_is_no_checkpoint(tmp_path: Path) -> None:
    ran = curator(
        "run", "report_pipelines:chatty", "--keep-going", "--reporter", "none", cwd=tmp_path
    )
    assert ran.returncode == 1, ran.stderr
    stray = tmp_path / ".curator" / "notes.sqlite"
    stray.write_text("not a database\n")
    later = stray.stat().st_mtime + 60
    os.utime(stray, (later, later))  # the newest file in the folder
    shown = curator("report", "--json", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert (
        "warning: passed over a newer file: .curator/notes.sqlite is not a curator "
        "checkpoint (not an SQLite database); it was left untouched\n"
    ) in shown.stderr, shown.stderr
    assert "--checkpoint" not in shown.stderr  # report has no such flag
    assert json.loads(shown.stdout)["counts"] == {"failed": 1, "ok": 5}
    assert stray.read_text() == "not a database\n"


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["report"], "no checkpoint in .curator/: name one (curator report CHECKPOINT)"),
        (["report", "missing.sqlite"], "no checkpoint at missing.sqlite"),
        (["report", "notes.txt"], "is not"),
    ],
)
def test_curator_report_usage_errors(tmp_path: Path, args: list[str], says: str) -> None:
    (tmp_path / "notes.txt").write_text("not a checkpoint\n" * 100)
    shown = curator(*args, cwd=tmp_path)
    assert shown.returncode == 2
    assert says in shown.stderr
    assert "Traceback" not in shown.stderr


def test_an_unwritable_html_file_is_a_usage_error(tmp_path: Path) -> None:
    curator("run", "report_pipelines:ten", "--reporter", "none", cwd=tmp_path)
    wrote = curator("report", "--html", str(tmp_path / "no" / "such" / "r.html"), cwd=tmp_path)
    assert wrote.returncode == 2
    assert "cannot write the report to" in wrote.stderr


@pytest.mark.parametrize("name", ["", " "])
def test_an_empty_html_file_name_is_a_usage_error(tmp_path: Path, name: str) -> None:
    """It printed the text report and exited 0, writing no page."""
    curator("run", "report_pipelines:ten", "--reporter", "none", cwd=tmp_path)
    wrote = curator("report", "--html", name, cwd=tmp_path)
    assert wrote.returncode == 2, wrote.stdout
    assert "--html needs a file name, got an empty one" in wrote.stderr
    assert wrote.stdout == ""


def test_the_report_of_a_run_still_going(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "curator",
        "run",
        "report_pipelines:busy",
        "--reporter",
        "none",
    ]
    running = subprocess.Popen(
        command, cwd=tmp_path, env=subprocess_env(), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        data = shown_while_running(lambda: curator("report", "--json", cwd=tmp_path))
        assert data["state"] == "running"
        assert 0 < data["recorded"] < data["total"] == 12  # type: ignore[operator]
    finally:
        _, err = running.communicate(timeout=60)
    assert running.returncode == 0, err
    done = json.loads(curator("report", "--json", cwd=tmp_path).stdout)
    assert done["state"] == "finished"
    assert done["recorded"] == 12


def test_a_checkpoint_measured_only_in_its_second_run(tmp_path: Path) -> None:
    store = tmp_path / "run.sqlite"
    pipeline = probe(6, tmp_path, flaky=frozenset({1, 4}))  # they fail their first attempt
    run(pipeline, checkpoint=store, on_error="continue", metrics=False, reporter=None)
    run(pipeline, checkpoint=store, resume=True, reporter=None)  # runs 1 and 4 again
    report = build(store)
    assert report.counts == {"ok": 6}
    assert [s.items for s in report.stages] == [2, 2]  # the two items measured
    assert sorted(item.index for item in report.hungriest) == [1, 4]
    assert all(item.rss_peak for item in report.hungriest)
    assert {item.index: item.rss_peak for item in report.slowest if item.index in (0, 2)} == {
        0: None, 2: None
    }  # fmt: skip


def _shift_run(store: Path, run_id: int, seconds: float) -> None:
    """Move every time recorded of run ``run_id`` by ``seconds`` (as if it ran then)."""
    with closing(sqlite3.connect(store)) as db, db:
        db.execute(
            "UPDATE runs SET started = started + ?, finished = finished + ? WHERE id = ?",
            (seconds, seconds, run_id),
        )
        rows = db.execute("SELECT id, started, finished FROM journal WHERE run = ?", (run_id,))
        for row, *times in list(rows):
            moved = []
            for blob in times:
                values = array.array("d")
                values.frombytes(blob)
                moved.append(array.array("d", (t + seconds for t in values)).tobytes())
            db.execute("UPDATE journal SET started = ?, finished = ? WHERE id = ?", (*moved, row))


def test_the_idle_time_between_a_run_and_its_resume_is_marked_not_counted(
    tmp_path: Path,
) -> None:
    store = tmp_path / "run.sqlite"
    pipeline = probe(40, tmp_path, sleep=0.002)
    run(pipeline, backend="thread-pool", jobs=2, indices=range(15), checkpoint=store,
        reporter=None)  # fmt: skip
    run(pipeline, backend="thread-pool", jobs=2, checkpoint=store, resume=True, reporter=None)
    _shift_run(store, 1, -3600.0)  # the first run ended an hour before the resume
    report = build(store)
    assert report.runs == 2
    assert [span.run for span in report.spans] == [1, 2]
    first, second = report.spans
    assert first.idle_before == 0
    assert 3600 - 60 < second.idle_before < 3600 + 60
    assert report.seconds < 60 < 3540 < report.idle_seconds  # running time only
    assert first.start == 0
    assert second.start == pytest.approx(first.end)
    assert second.end == pytest.approx(report.seconds)
    for lane in report.lanes:  # drawn on the axis of running time, the gap taken out
        assert all(0 <= begin <= end <= report.seconds + 1e-6 for begin, end, _ in lane.items)
    assert sum(report.throughput) * report.seconds / len(report.throughput) == pytest.approx(40)
    page = render(report)
    assert page.count('class="gap"') == 2  # in the timeline and in the throughput chart
    assert re.search(r"idle 1:00:0\d", page)
    assert 'class="run-start"' in page
    shown = curator("report", str(store), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "idle between runs" in shown.stdout


def _failed_widths(page: str) -> list[float]:
    return [float(w) for w in re.findall(r'<rect [^>]*width="([\d.]+)"[^>]*class="failed"', page)]


def test_a_quick_failure_is_seen_on_a_long_timeline(tmp_path: Path) -> None:
    store = tmp_path / "run.sqlite"
    run(probe(10, tmp_path, sleep=0.002, fail=frozenset({4})), backend="thread-pool", jobs=2,
        checkpoint=store, on_error="continue", reporter=None)  # fmt: skip
    report = dataclasses.replace(build(store), seconds=3600.0)  # the item is 1/1,000,000 of it
    widths = _failed_widths(render(report))
    assert len(widths) == 1
    assert widths[0] >= 3  # not the hairline of 1 px an ok item of that length gets


def test_failures_show_on_the_aggregated_timeline_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_model, "DRAWN_ITEMS", 20)
    store = tmp_path / "run.sqlite"
    run(probe(200, tmp_path, fail=frozenset({77, 150})), backend="thread-pool", jobs=2,
        checkpoint=store, on_error="continue", reporter=None)  # fmt: skip
    report = build(store)
    assert not report.drawn
    assert sorted(status for lane in report.lanes for *_, status in lane.failed) == ["failed"] * 2
    assert len(_failed_widths(render(report))) == 2


HOSTILE = '<script>alert("x & y")</script></pre><marquee>&amp;'
"""Text that is markup if written into the page as it is."""


class _Hostile(Sink[int]):
    """Prints hostile text and fails with it in the message and the traceback's source line."""

    def __call__(self, items: Iterator[int], index: int) -> list[str]:
        list(items)
        print(f"printed {HOSTILE}")
        print(f"to stderr {HOSTILE}", file=sys.stderr)
        raise ValueError(f'message {HOSTILE} <script>alert("in the line")</script>')


def test_the_html_page_escapes_what_items_print_and_raise(tmp_path: Path) -> None:
    store = tmp_path / "run.sqlite"
    run(Numbers(2).write(_Hostile()), checkpoint=store, on_error="continue", reporter=None)
    report = build(store)
    assert report.failures_total == 2
    failure = report.failures[0]
    assert failure.error is not None
    assert failure.output is not None
    assert HOSTILE in failure.error["message"]
    assert HOSTILE in failure.output["text"]
    assert 'alert("in the line")' in failure.error["traceback"]  # the source line is shown
    page = render(report)
    assert "<script" not in page
    assert "</script>" not in page
    assert HOSTILE not in page
    assert "<marquee" not in page
    escaped = (
        "&lt;script&gt;alert(&quot;x &amp; y&quot;)&lt;/script&gt;&lt;/pre&gt;"
        "&lt;marquee&gt;&amp;amp;"
    )
    assert page.count(f"message {escaped}") == 2 * 2  # summary line and traceback, per item
    assert page.count(f"printed {escaped}") == 2
    assert page.count(f"to stderr {escaped}") == 2
    assert "alert(&quot;in the line&quot;)" in page
    assert page.count("<pre>") == page.count("</pre>") == 2 * 2  # no block closed by an item
    assert page.count("<details") == page.count("</details>") == 2


def test_a_failures_per_item_fields_of_plugins_are_in_the_report(tmp_path: Path) -> None:
    from curator.plugin_host.plugins import PluginSettings
    from curator.plugin_host.registry import Registry
    from curator.testing.extras import FIELD, ProbePlugin

    registry = Registry.load(
        PluginSettings(strict=True), entrypoints=False, plugins=[("probe", ProbePlugin())]
    )
    store = tmp_path / "run.sqlite"
    run(probe(6, tmp_path, fail=frozenset({4})), checkpoint=store, on_error="continue",
        reporter=None, registry=registry)  # fmt: skip
    report = build(store)
    [failed] = report.failures
    assert failed.extras is not None
    assert failed.extras[FIELD]["index"] == 4
    assert failed.extras[FIELD]["ok"] is False
    assert report.to_json()["failures"][0]["extras"] == failed.extras
    page = render(report)
    assert "Recorded by plugins:" in page
    assert f"{FIELD}: {{&quot;index&quot;: 4," in page  # escaped JSON
