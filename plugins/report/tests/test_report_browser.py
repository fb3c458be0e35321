"""The HTML report in a real headless Chromium, driven by Playwright.

Needs ``playwright`` (the Python package) and a Chromium (Debian's
``/usr/bin/chromium``, or ``CURATOR_CHROMIUM``); the tox env ``browser`` has
both and sets ``CURATOR_REQUIRE_BROWSER=1``, which turns their absence into a
failure, not a skip. (``tools/report_screenshot.py`` makes the screenshot in
the docs the same way.)
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import curator_report.model as report_model
import pytest
from curator_report.html import LANE_HEIGHT, render
from curator_report.model import build

from curator import run
from curator.testing.probes import probe

CHROMIUM = os.environ.get("CURATOR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
if os.environ.get("CURATOR_REQUIRE_BROWSER") != "1":
    pytest.importorskip("playwright")
    if not Path(CHROMIUM).exists():
        pytest.skip("no Chromium (apt-get install chromium)", allow_module_level=True)

from playwright.sync_api import Browser, sync_playwright  # noqa: E402

# Headless on a closed network: no background connections, no GPU, no sandbox as root.
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


def open_page(browser: Browser, page_file: Path) -> tuple[Any, list[str], list[str]]:
    """Load ``page_file``; return the page, console problems and every URL it requested."""
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    problems: list[str] = []
    requests: list[str] = []
    page.on(
        "console", lambda m: problems.append(f"{m.type}: {m.text}") if m.type == "error" else None
    )
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(page_file.as_uri(), wait_until="load")
    return page, problems, requests


def test_the_report_loads_without_errors_with_one_lane_per_worker(
    tmp_path: Path, browser: Browser
) -> None:
    store = tmp_path / "run.sqlite"
    run(probe(30, tmp_path, chatty=True, sleep=0.005, fail=frozenset({5, 17})),
        backend="thread-pool", jobs=3, checkpoint=store, on_error="continue",
        reporter=None)  # fmt: skip
    report = build(store)
    page_file = tmp_path / "report.html"
    page_file.write_text(render(report), encoding="utf-8")
    page, problems, requests = open_page(browser, page_file)
    assert problems == []
    assert requests == [page_file.as_uri()]  # self-contained: nothing else is fetched
    lanes = page.locator("#timeline-chart g.lane")
    assert lanes.count() == len(report.lanes) >= 1
    assert [lanes.nth(k).get_attribute("data-worker") for k in range(lanes.count())] == [
        lane.worker for lane in report.lanes
    ]
    for k, lane in enumerate(report.lanes):  # one drawn rectangle per item of the worker
        assert lanes.nth(k).locator("rect").count() == lane.count
    chart = page.locator("#timeline-chart").bounding_box()
    assert chart is not None
    assert chart["width"] > 500
    assert chart["height"] >= len(report.lanes) * LANE_HEIGHT
    assert page.locator("details.failure").count() == 2
    page.locator("details.failure summary").first.click()
    assert page.get_by_text("probe: item 5 fails").first.is_visible()
    assert page.locator("h2#stages + table tbody tr").count() == len(report.stages)
    page.close()


def test_an_aggregated_timeline_loads_without_errors(
    tmp_path: Path, browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(report_model, "DRAWN_ITEMS", 10)
    store = tmp_path / "run.sqlite"
    run(probe(120, tmp_path), backend="thread-pool", jobs=2, checkpoint=store, reporter=None)
    report = build(store)
    assert not report.drawn
    page_file = tmp_path / "report.html"
    page_file.write_text(render(report), encoding="utf-8")
    page, problems, _ = open_page(browser, page_file)
    assert problems == []
    assert page.locator("#timeline-chart g.lane").count() == len(report.lanes)
    assert page.get_by_text("busy share of each time slice").is_visible()
    page.close()
