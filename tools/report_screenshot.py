"""Make ``docs/images/report.png``: the HTML report of the README's example run.

Usage (needs ``playwright`` and Debian's Chromium, as the tox env ``browser``)::

    python tools/report_screenshot.py [--out docs/images/report.png]

Runs ``curator.examples.snapshots:pipeline`` on process-pool with 2 jobs into
a temporary checkpoint, renders ``curator report --html`` and takes a
screenshot of the top of the page in headless Chromium.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from curator_report.html import render
from curator_report.model import build

from curator import run
from curator.examples.snapshots import pipeline

FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def main() -> None:
    """Run the example, render its report and take the screenshot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/images/report.png"))
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = os.environ.get("CURATOR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "snapshots.sqlite"
        output = str(Path(folder) / "out")
        run(pipeline(count=400, output=output), backend="process-pool", jobs=2,
            checkpoint=store, reporter=None)  # fmt: skip
        page_file = Path(folder) / "report.html"
        page_file.write_text(render(build(store)), encoding="utf-8")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=FLAGS)
            page = browser.new_page(viewport={"width": 1040, "height": 1100})
            page.goto(page_file.as_uri(), wait_until="load")
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out))
            browser.close()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
