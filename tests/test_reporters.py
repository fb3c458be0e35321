from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from core_support import curator, make_distribution, run_in_pty, subprocess_env
from pipelines import FailAt, Numbers, numbers

from curator import Sink, UsageError, run
from curator.observing.reporters import JsonReporter, LogReporter, RichReporter, auto_reporter

SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "events.schema.json").read_text())
STAMP = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d curator: "


# -- log ------------------------------------------------------------------------


def log_lines(count: int, **options: Any) -> list[str]:
    out = io.StringIO()
    pipeline = Numbers(count).write(FailAt({3}))
    run(
        pipeline,
        on_error="continue",
        reporter=LogReporter(LogReporter.Options(stream=out, **options)),
    )
    return out.getvalue().splitlines()


def test_log_writes_start_failures_progress_every_step_and_a_summary() -> None:
    lines = log_lines(1000, interval=0.0, step=0.1)
    assert all(re.match(STAMP, line) or line.startswith("  ") for line in lines)
    assert re.match(STAMP + r"run started: 1000 items on sequential, jobs=1: ", lines[0])
    assert re.search(r"item 3 failed on main: ValueError: bad item 3$", lines[1])
    progress = [line for line in lines if re.search(r" \d+/1000 \(", line)]
    # Every 10%, never at 100% (the summary says that).
    assert [re.search(r" (\d+)/1000", line).group(1) for line in progress] == [  # type: ignore[union-attr]
        str(n) for n in range(100, 1000, 100)
    ]
    assert re.search(r"100/1000 \(10\.0%\), [\d,.]+ items/s, ETA \d+:\d\d, 1 failed$", progress[0])
    assert re.search(STAMP + "1000 items: 999 ok, 1 failed in", lines[-3])
    stage = r"[\d.]+ s \(\d+%\)"
    # Quick items are sampled: the line says over how many measured by stage.
    assert re.fullmatch(
        rf"  time per stage: Numbers \(source\) {stage}, FailAt \(sink\) {stage}"
        r"( \(over the [\d,]+ of 1,000 items measured by stage\))?",
        lines[-2],
    )
    assert lines[-1] == "  item 3 failed: ValueError: bad item 3"


def test_log_rate_is_bounded_by_time_as_well() -> None:
    # A fast run within one interval: only start, the failure, and the summary
    # (headline, time per stage, the failure).
    lines = log_lines(5000, interval=3600.0, step=0.1)
    assert not [line for line in lines if "/5000 (" in line]
    assert len(lines) == 5


def test_log_options_are_validated() -> None:
    with pytest.raises(UsageError, match="step must be in"):
        run(numbers(2), reporter="log", reporter_options={"log": {"step": 2}})
    with pytest.raises(UsageError, match="unknown option 'every' for reporter 'log'"):
        run(numbers(2), reporter="log", reporter_options={"log": {"every": 2}})
    with pytest.raises(
        UsageError, match="options given for reporter 'json', which is not selected"
    ):
        run(numbers(2), reporter="log", reporter_options={"json": {"file": "x"}})


# -- json -------------------------------------------------------------------------


def valid_events(tmp_path: Path, pipeline: Any, **options: Any) -> list[dict[str, Any]]:
    """The json reporter's events of a run that goes on past failures, checked by the schema."""
    target = tmp_path / "events.jsonl"
    run(
        pipeline,
        on_error="continue",
        reporter="json",
        reporter_options={"json": {"file": str(target)}},
        **options,
    )
    events = [json.loads(line) for line in target.read_text().splitlines()]
    for event in events:
        jsonschema.validate(event, SCHEMA)
    return events


def test_json_events_follow_the_documented_schema(tmp_path: Path) -> None:
    events = valid_events(tmp_path, Numbers(20).write(FailAt({4})), backend="thread-pool", jobs=2)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "run_start"
    assert kinds[-1] == "run_finish"
    assert kinds.count("task_start") == kinds.count("task_finish") == 20
    assert events[0]["total"] == 20
    for index in range(20):
        mine = [e["event"] for e in events if e.get("index") == index]
        assert mine == ["task_start", "task_finish"]
    failed = next(e for e in events if e.get("index") == 4 and e["event"] == "task_finish")
    assert failed["status"] == "failed"
    assert failed["error"]["type"] == "ValueError"
    assert "bad item 4" in failed["error"]["traceback"]
    ok = next(e for e in events if e.get("index") == 5 and e["event"] == "task_finish")
    assert ok["outputs"] == ["5"]
    assert ok["error"] is None
    assert events[-1]["failed"] == 1


def test_json_events_of_items_read_at_their_end_follow_the_schema(tmp_path: Path) -> None:
    """Quick items are sampled: one that fails unmeasured has no split by stage (nulls)."""
    # 8 items measured, then bare ones: 20 is one
    events = valid_events(tmp_path, Numbers(40).write(FailAt({20})))
    failed = next(e for e in events if e.get("index") == 20 and e["event"] == "task_finish")
    assert failed["status"] == "failed"
    assert failed["metrics"]["stages"] == [None, None]
    assert failed["metrics"]["rss_peak"] > 0
    assert (
        next(e for e in events if e.get("index") == 19 and e["event"] == "task_finish")["metrics"]
        is None
    )  # bare, quick and ok: no metrics


class FollowsTheEvents(Sink[int]):
    """Each item waits (up to 5 s) for the previous item's task_finish in the events file,
    as a tool following it would, and notes what it found."""

    def __init__(self, events: Path) -> None:
        self.events = events
        self.seen: list[list[int]] = []

    def __call__(self, items: Any, index: int) -> list[str]:
        deadline = time.monotonic() + 5
        while True:
            lines = self.events.read_text().splitlines()
            finished = [json.loads(line)["index"] for line in lines if '"task_finish"' in line]
            if len(finished) == index or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.seen.append(finished)
        return [str(item) for item in items]


def test_json_writes_each_event_through_soon_after_it_happens(tmp_path: Path) -> None:
    """A tool that follows the file saw nothing until the run ended (events were held in
    the stream's buffer), and a killed run lost them."""
    events = tmp_path / "events.jsonl"
    sink = FollowsTheEvents(events)
    run(Numbers(3).write(sink), reporter="json", reporter_options={"json": {"file": str(events)}})
    assert sink.seen == [[], [0], [0, 1]]


def test_json_goes_to_stdout_by_default(capsys: pytest.CaptureFixture[str]) -> None:
    run(numbers(3), reporter="json")
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [e["event"] for e in events] == ["run_start"] + ["task_start", "task_finish"] * 3 + [
        "run_finish"
    ]


def test_cli_refuses_json_reporter_and_json_summary_on_the_same_stdout(tmp_path: Path) -> None:
    clash = curator("run", "pipelines:ten", "--reporter", "json", "--json")
    assert clash.returncode == 2
    assert "--reporter-option json.file=PATH" in clash.stderr
    events = tmp_path / "e.jsonl"
    fine = curator(
        "run",
        "pipelines:ten",
        "--reporter",
        "json",
        "--reporter-option",
        f"json.file={events}",
        "--json",
    )
    assert fine.returncode == 0, fine.stderr
    assert json.loads(fine.stdout)["ok"] == 10
    assert len(events.read_text().splitlines()) == 22


# -- rich -------------------------------------------------------------------------


def test_rich_summary_lists_counts_slowest_and_failures() -> None:
    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, force_terminal=False, width=120)
    run(
        Numbers(6).write(FailAt({2})),
        on_error="continue",
        reporter=RichReporter(RichReporter.Options(console=console)),
    )
    text = out.getvalue()
    assert "6 items: 5 ok, 1 failed in" in text
    assert "slowest: item" in text
    assert "item 2 failed: ValueError: bad item 2" in text


def test_rich_live_view_in_a_real_terminal_shows_worker_rows_and_a_summary() -> None:
    env = subprocess_env()
    env.pop("CI", None)
    code, samples, final = run_in_pty(
        ["run", "pipelines:busy", "-b", "thread-pool", "-j", "2"], env
    )
    assert code == 0, final
    # While the run goes, a row per busy worker names the item it is on.
    assert any(
        re.search(r"thread-0\s+item \d+\s+\d+\.\d s", s) and re.search(r"thread-1\s+item \d+", s)
        for s in samples
    ), samples[-3:]
    assert any(re.search(r"\d+/12\s+\d+%", s) for s in samples)
    # At the end: the full bar and the summary.
    assert "12/12 100%" in final
    assert "curator: 12 items: 12 ok in" in final
    assert "slowest: item" in final


def test_rich_live_view_shows_at_most_max_rows_workers_then_how_many_more() -> None:
    env = subprocess_env()
    env.pop("CI", None)
    options = ["rich.max_rows=2", "rich.delay=0"]
    code, samples, final = run_in_pty(
        ["run", "pipelines:busy", "-b", "thread-pool", "-j", "4", "--reporter", "rich"]
        + [arg for option in options for arg in ("--reporter-option", option)],
        env,
    )
    assert code == 0, final
    assert any("+2 more busy" in s for s in samples), samples[-3:]
    # Never more than two worker rows on screen.
    assert max(len(re.findall(r"thread-\d\s+item \d+", s)) for s in samples) == 2
    assert "curator: 12 items: 12 ok in" in final


def test_no_color_keeps_the_live_view_without_colours() -> None:
    env = subprocess_env()
    env.pop("CI", None)
    env.pop("FORCE_COLOR", None)
    args = ["run", "pipelines:busy", "-b", "thread-pool", "-j", "2"]
    coloured, plain = bytearray(), bytearray()
    assert run_in_pty(args, env, coloured)[0] == 0
    code, samples, final = run_in_pty(args, {**env, "NO_COLOR": "1"}, plain)
    assert code == 0
    assert any(re.search(r"thread-\d\s+item \d+", s) for s in samples)
    assert "curator: 12 items: 12 ok in" in final
    colour = re.compile(rb"\x1b\[[0-9;]*3[0-9](;[0-9]+)*m")  # a foreground colour
    assert colour.search(bytes(coloured))
    assert not colour.search(bytes(plain))


def test_auto_is_log_without_a_terminal_and_in_ci() -> None:
    env = subprocess_env()
    env.pop("CI", None)
    proc = curator("run", "pipelines:ten", env=env)
    assert re.search("^" + STAMP + "run started: 10 items", proc.stderr, re.M), proc.stderr
    code, _, final = run_in_pty(["run", "pipelines:ten"], {**env, "CI": "true"})
    assert code == 0
    assert re.search(STAMP + "run started", final)


def test_auto_is_rich_on_an_interactive_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("TTY_INTERACTIVE", "1")
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    assert auto_reporter() == "rich"
    monkeypatch.setenv("CI", "1")
    assert auto_reporter() == "log"
    monkeypatch.setenv("CI", "false")
    assert auto_reporter() == "rich"
    monkeypatch.setenv("TTY_INTERACTIVE", "0")
    assert auto_reporter() == "log"


# -- third-party --------------------------------------------------------------------


def test_a_third_party_reporter_is_selected_by_name(site: Path) -> None:
    make_distribution(site, "curator-fixture-good", "1.2.3", {"good": "curator_fixture_good"})
    proc = curator("run", "pipelines:ten", "--reporter", "tally", env=subprocess_env(site))
    assert proc.returncode == 0, proc.stderr
    assert "tally: 10 items finished" in proc.stderr
    both = curator(
        "run", "pipelines:ten", "--reporter", "tally", "--reporter", "log", env=subprocess_env(site)
    )
    assert "tally: 10 items finished" in both.stderr
    assert "run started: 10 items" in both.stderr


def test_reporters_list_shows_the_builtins() -> None:
    proc = curator("reporters", "list", "--json")
    names = {row["name"]: row for row in json.loads(proc.stdout)}
    assert {"rich", "log", "json", "summary", "none"} <= set(names)
    assert names["rich"]["provided_by"] == "builtin"


def test_reporter_instances_and_json_reporter_in_python(tmp_path: Path) -> None:
    out = io.StringIO()
    run(numbers(2), reporter=[JsonReporter(JsonReporter.Options(stream=out)), "none"])
    assert len(out.getvalue().splitlines()) == 6
