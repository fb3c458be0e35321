"""The fault campaign, part three: a stage's per-worker ``setup``/``teardown`` that hangs.

On every backend, with ``--setup-timeout``/``--teardown-timeout``: the run ends (no
hang, no process left behind); a hung ``setup`` fails only the items its worker had
taken (``SetupTimeout``) and the others finish; a hung ``teardown`` is given up with a
warning and every item is ok; then ``--resume`` (nothing hangs) finishes everything,
runs nothing recorded as done again, and the merged stage state holds each item once.

Seeds, counts and the figures: ``campaign.py``.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import campaign
import pytest
from campaign import SEED, Pending

from curator.testing.probes import release
from curator.testing.processes import descendants

pytestmark = pytest.mark.faults


def test_a_hung_setup_or_teardown_is_bounded_and_costs_only_its_workers_items(
    pending: Pending, tmp_path: Path
) -> None:
    chance, turns = campaign.rng("hung"), Counter[str]()
    for number, backend in campaign.runs("hung"):
        hook = ("setup", "teardown")[turns[backend] % 2]  # each backend gets both in turn
        turns[backend] += 1
        items = chance.randrange(30, 150)
        stages = "hooks+tally"
        folder, markers = campaign.folders(tmp_path, f"hung{number}")
        checkpoint = folder / "c.sqlite"
        what = f"hung {hook} run {number} on {backend} (seed {SEED})"
        args = ["-b", backend, "-j", campaign.jobs(backend), "--checkpoint", str(checkpoint)]
        proc = campaign.start(
            [*args, *campaign.LIMIT_FLAGS, "--keep-going"],
            campaign.env(markers, "first", items, 0.01, stages, hang=hook),
            folder,
        )
        try:
            campaign.wait_for_markers(proc, markers, 1)
            tree = descendants(proc.pid)
            out, err = campaign.finish(proc, what)
        finally:
            release(folder)
        campaign.check_no_orphans(tree, what)
        assert (folder / "hung").exists(), f"{what}: no {hook}() hung (the fault never happened)"
        summary = campaign.summary_of(out, err, proc.returncode, what)
        assert sum(summary["counts"].values()) == items, f"{what}: {summary['counts']}"
        failed = {f["error_type"] for f in summary["failures"]}
        if hook == "setup":
            assert proc.returncode == 1, f"{what}: exit {proc.returncode}\n{err[-2000:]}"
            assert failed == {"SetupTimeout"}, f"{what}: {summary['failures'][:3]}"
            assert summary["ok"] + summary["failed"] == items, f"{what}: {summary['counts']}"
        else:
            assert proc.returncode == 0, f"{what}: exit {proc.returncode}\n{err[-2000:]}"
            assert summary["ok"] == items, f"{what}: {summary['counts']}"
            assert "teardown() did not finish within" in err, f"{what}: {err[-2000:]}"
        campaign.resume_and_check(checkpoint, markers, items, backend, stages, what)
        campaign.check_stages(pending, stages, *campaign.stage_files(folder), range(items), what)
        campaign.record(f"hung {hook} ({backend})", 1)
    pending.settle()
