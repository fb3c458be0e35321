"""Capture, metrics and the checkpoint are built-in plugins: listed, and switched off by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from core_support import as_json, curator, make_distribution, subprocess_env

from curator import Registry, UsageError, run
from curator.plugin_host.plugins import PluginSettings
from curator.testing.probes import probe


def _events(tmp_path: Path, *flags: str, **env: str) -> list[dict[str, object]]:
    events = tmp_path / "events.jsonl"
    ran = curator("run", "pipelines:chatty", "--keep-going", "--reporter", "json",
                  "--reporter-option", f"json.file={events}", *flags,
                  env=subprocess_env(**env), cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 1, ran.stderr  # item 2 fails on purpose
    return [json.loads(line) for line in events.read_text().splitlines()]


def test_capture_and_metrics_are_listed_as_built_in_plugins() -> None:
    rows = {row["name"]: row for row in as_json(curator("plugins", "list", "--json"))}
    for name in ("capture", "metrics"):
        row = rows[f"builtin-{name}"]
        assert row["status"] == "loaded", row
        assert row["provided_by"] == "builtin"
        assert row["provides"] == [f"feature:{name}"]


def test_disabling_capture_by_name_is_no_capture(tmp_path: Path) -> None:
    events = _events(tmp_path, CURATOR_DISABLE_PLUGINS="builtin-capture")
    finished = [e for e in events if e["event"] == "task_finish"]
    assert len(finished) == 6
    assert [e["output"] for e in finished] == [None] * 6
    assert all(e["metrics"] is not None for e in finished)  # metrics stay on
    rows = {
        r["name"]: r
        for r in as_json(
            curator(
                "plugins",
                "list",
                "--json",
                env=subprocess_env(CURATOR_DISABLE_PLUGINS="builtin-capture"),
            )
        )
    }
    assert rows["builtin-capture"]["status"] == "disabled"


def test_disabling_metrics_by_name_is_no_metrics(tmp_path: Path) -> None:
    events = _events(tmp_path, CURATOR_DISABLE_PLUGINS="builtin-metrics")
    assert events[0]["metrics"] is False  # run_start says items are not measured
    finished = [e for e in events if e["event"] == "task_finish"]
    assert [e["metrics"] for e in finished] == [None] * 6
    assert all(e["output"] is not None for e in finished)  # capture stays on


def test_no_plugins_keeps_the_built_in_features(tmp_path: Path) -> None:
    events = _events(tmp_path, "--no-plugins")
    finished = [e for e in events if e["event"] == "task_finish"]
    assert all(e["output"] is not None and e["metrics"] is not None for e in finished)


def test_a_registry_without_them_runs_without_them(tmp_path: Path) -> None:
    registry = Registry.load(
        PluginSettings(strict=True, disabled=frozenset({"builtin-capture", "builtin-metrics"})),
        entrypoints=False,
    )
    result = run(probe(4, tmp_path, chatty=True), registry=registry, reporter=None)
    assert result.ok
    assert not result.run.capture
    assert not result.run.metrics
    assert [(o.output, o.metrics) for o in result.outcomes] == [(None, None)] * 4
    # Only the disabled ones: with them, items print and are measured.
    (tmp_path / "again").mkdir()
    kept = run(probe(4, tmp_path / "again", chatty=True), reporter=None)
    assert all(o.output is not None and o.metrics is not None for o in kept.outcomes)


def test_the_checkpoint_is_a_built_in_plugin_that_adds_status_and_logs() -> None:
    rows = {row["name"]: row for row in as_json(curator("plugins", "list", "--json"))}
    assert rows["builtin-checkpoint"]["status"] == "loaded"
    assert rows["builtin-checkpoint"]["provided_by"] == "builtin"
    assert rows["builtin-checkpoint"]["provides"] == ["command:status", "command:logs"]


def test_disabling_the_checkpoint_by_name_records_nothing_and_says_why(tmp_path: Path) -> None:
    env = subprocess_env(CURATOR_DISABLE_PLUGINS="builtin-checkpoint")
    ran = curator("run", "pipelines:ten", "--json", env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["ok"] == 10
    assert "no checkpoint: the built-in plugin builtin-checkpoint is disabled" in ran.stderr
    assert list(tmp_path.iterdir()) == []  # no .curator/, no checkpoint
    for args in (["run", "pipelines:ten", "--resume"],
                 ["run", "pipelines:ten", "--checkpoint", "c.sqlite"]):  # fmt: skip
        refused = curator(*args, env=env, cwd=tmp_path)
        assert refused.returncode == 2, (args, refused.stderr)
        assert (
            "--checkpoint and --resume need the built-in plugin builtin-checkpoint, which is "
            in (refused.stderr)
        )
    for command in (["status"], ["logs", "3"]):
        refused = curator(*command, env=env, cwd=tmp_path)
        assert refused.returncode == 2, refused.stderr
        assert (
            f"curator {command[0]} comes with the built-in plugin builtin-checkpoint, which is "
            "disabled "
            "(CURATOR_DISABLE_PLUGINS)"
        ) in refused.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_registry_without_the_checkpoint_refuses_one(tmp_path: Path) -> None:
    registry = Registry.load(
        PluginSettings(strict=True, disabled=frozenset({"builtin-checkpoint"})), entrypoints=False
    )
    with pytest.raises(UsageError, match="needs the built-in plugin builtin-checkpoint, which is"):
        run(probe(2, tmp_path), registry=registry, reporter=None, checkpoint=tmp_path / "c.sqlite")
    assert not (tmp_path / "c.sqlite").exists()
    assert run(probe(2, tmp_path), registry=registry, reporter=None).ok  # none asked: none made


def test_a_third_party_plugin_named_like_a_feature_neither_clashes_nor_switches_it_off(
    site: Path, tmp_path: Path
) -> None:
    """Found by a review: built-ins named `metrics` broke a plugin of that name, and disabling
    that plugin switched built-in metrics off too."""
    make_distribution(site, "curator-fixture-metrics", "1.0",
                      {"metrics": "curator_fixture_good"})  # fmt: skip
    rows = {r["name"]: r for r in as_json(curator("plugins", "list", "--json",
                                                  env=subprocess_env(site)))}  # fmt: skip
    assert rows["metrics"]["status"] == "loaded", rows["metrics"]
    assert rows["builtin-metrics"]["status"] == "loaded"
    events = _events(tmp_path, CURATOR_DISABLE_PLUGINS="metrics")
    assert events[0]["metrics"] is True  # the built-in stays on
