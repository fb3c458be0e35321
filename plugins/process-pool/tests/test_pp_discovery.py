from __future__ import annotations

import json
import subprocess
import sys

from pp_support import subprocess_env

import curator_backend_process_pool


def curator_json(*args: str) -> object:
    proc = subprocess.run(
        [sys.executable, "-m", "curator", *args, "--json"],
        capture_output=True,
        text=True,
        env=subprocess_env(CURATOR_STRICT_PLUGINS="1"),
        check=True,
    )
    return json.loads(proc.stdout)


def test_the_installed_plugin_is_listed_with_its_distribution_and_version() -> None:
    rows = {row["name"]: row for row in curator_json("backends", "list")}  # type: ignore[union-attr]
    assert rows["process-pool"] == {
        "name": "process-pool",
        "provided_by": "curator-backend-process-pool",
        "version": curator_backend_process_pool.__version__,
        "status": "ok",
        "detail": "",
        "description": "Worker processes; the pipeline ships once per worker, work goes in chunks.",
    }
    plugins = {row["name"]: row for row in curator_json("plugins", "list")}  # type: ignore[union-attr]
    assert plugins["process-pool"]["provides"] == ["backend:process-pool"]


def test_the_hook_module_imports_nothing_heavy() -> None:
    code = (
        "import sys, curator_backend_process_pool.hooks\n"
        "heavy = {'multiprocessing.pool', 'concurrent.futures', 'dask', 'numpy', 'joblib'}\n"
        "print(sorted(heavy & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
