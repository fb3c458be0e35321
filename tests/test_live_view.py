"""The rich live view in a real pseudo-terminal: stopping state, width, pipes."""

from __future__ import annotations

import re
from pathlib import Path

from core_support import INTERRUPTED, curator, run_in_pty, subprocess_env

BAR_LINE = re.compile(r"━+ \d+/\d+ +\d+%")


def _env() -> dict[str, str]:
    env = subprocess_env()
    for forcing in ("CI", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(forcing, None)  # the terminal, or its absence, decides
    return env


def test_after_the_first_ctrl_c_the_view_shows_a_stopping_state_that_stays(
    tmp_path: Path,
) -> None:
    markers = tmp_path / "markers"
    markers.mkdir()
    args = ["run", "pipelines:marked_six", "-b", "thread-pool", "-j", "2", "--reporter", "rich"]
    args += ["--reporter-option", "rich.delay=0"]

    def both_items_run(screen: str) -> bool:
        return bool(BAR_LINE.search(screen)) and len(list(markers.iterdir())) == 2

    env = {**_env(), "CURATOR_TEST_MARKERS": str(markers)}
    code, samples, final = run_in_pty(args, env, interrupt_on=both_items_run, cwd=tmp_path)
    assert code == 130, final
    after = samples[samples.index(INTERRUPTED) + 1 :]
    live = [s for s in after if BAR_LINE.search(s) and "curator: 6 items" not in s]
    # The view kept redrawing while the two running items finished (2 s at 8 frames/s).
    assert len(live) >= 3, after[-3:]
    waited = 0
    for screen in live[1:]:
        running = re.findall(r"^  \S+ +item \d+ +\d+\.\d s *$", screen, re.M)
        waiting = re.search(
            r"^stopping: no new items; waiting up to \d+ s for (\d+) running \(Ctrl-C again "
            r"to stop them at once\)",
            screen,
            re.M,
        )
        if running:  # the line says how many it waits for, and only while there are some
            assert waiting is not None, screen
            assert int(waiting.group(1)) == len(running), screen
            waited += 1
        else:
            assert waiting is None, screen
        assert "ETA" not in screen
    assert waited >= 2, live
    # Nothing stale above: one bar on the final screen, one stopping notice line.
    assert len(BAR_LINE.findall(final)) == 1, final
    assert final.count("curator: stopping: no new items") == 1, final
    assert "curator: 6 items: 2 ok, 4 cancelled; interrupted after" in final, final
    # The last frame counts what finished (the 4 cancelled items did not) and waits for
    # nothing: no "6/6 100%", no "waiting ... for 0 running".
    bar = BAR_LINE.search(final)
    assert bar is not None
    assert re.search(r"━+ 2/6 +33%", final), final
    assert "stopped" in final.splitlines()[_line_of(final, bar.group(0))]
    assert not re.search(r"^stopping: no new items; waiting", final, re.M), final
    assert "for 0 running" not in final, final


def _line_of(screen: str, text: str) -> int:
    return next(n for n, line in enumerate(screen.splitlines()) if text in line)


def test_the_progress_line_fits_an_80_column_terminal(tmp_path: Path) -> None:
    args = ["run", "pipelines:busy", "-b", "thread-pool", "-j", "2", "--reporter", "rich"]
    args += ["--reporter-option", "rich.delay=0"]
    code, samples, final = run_in_pty(args, _env(), columns=80, cwd=tmp_path)
    assert code == 0, final
    bars = [line for s in samples for line in s.splitlines() if BAR_LINE.search(line)]
    assert bars
    # The whole status sits on the bar's line: no ETA or time wrapped onto a line of its own.
    assert all("items/s" in line and "ETA" in line for line in bars[1:]), bars[-3:]
    for screen in samples:
        for line in screen.splitlines():
            assert not re.fullmatch(r"\s*(ETA )?[0-9:-]+\s*", line), screen


def test_the_rich_reporter_into_a_pipe_prints_only_the_summary(tmp_path: Path) -> None:
    proc = curator("run", "pipelines:busy", "-b", "thread-pool", "-j", "4", "--reporter",
                   "rich", "--reporter-option", "rich.delay=0", cwd=tmp_path,
                   env=_env())  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("curator: 12 items: 12 ok in "), proc.stderr
    assert "ETA" not in proc.stderr
    assert "\x1b[" not in proc.stderr
