"""A plugin's per-item feature (``curator_register_item_features``), from the command line.

The field (``wall``) belongs to a fixture plugin installed as a distribution:
it reaches the JSON events, the checkpoint, ``curator logs`` and a resume
with no part of curator knowing it. The kit checks the same on every backend
(:mod:`curator.testing.extras`).
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import curator_fixture_extras as fixture
import jsonschema
import pytest
from core_support import as_json, curator, make_distribution, subprocess_env
from pipelines import numbers

from curator import ItemFeature, Status, hookimpl, run
from curator.testing.registries import isolated_registry

SCHEMA = json.loads((Path(__file__).parent.parent / "docs" / "events.schema.json").read_text())


@pytest.fixture
def extras_site(site: Path) -> Path:
    make_distribution(site, "curator-fixture-extras", "1.0", {"wall": "curator_fixture_extras"})
    return site


def test_a_plugins_field_reaches_events_checkpoint_logs_and_resume(
    extras_site: Path, tmp_path: Path
) -> None:
    env = subprocess_env(extras_site)
    events = tmp_path / "events.jsonl"
    store = tmp_path / "run.sqlite"
    ran = curator(
        "run", "pipelines:numbers", "-b", "thread-pool", "-j", "2", "--checkpoint", str(store),
        "--reporter", "json", "--reporter-option", f"json.file={events}", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    lines = [json.loads(line) for line in events.read_text().splitlines()]
    for event in lines:
        jsonschema.validate(event, SCHEMA)
    finished = {e["index"]: e for e in lines if e["event"] == "task_finish"}
    assert sorted(finished) == list(range(10))
    for event in finished.values():
        wall = event["extras"]["wall"]
        assert wall["ok"] is True
        assert wall["seconds"] >= 0
    shown = curator("logs", "3", str(store), env=env, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert f"wall: {json.dumps(finished[3]['extras']['wall'], sort_keys=True)}" in shown.stdout
    data = as_json(curator("logs", "3", str(store), "--json", env=env, cwd=tmp_path))
    assert data["extras"] == finished[3]["extras"]
    # A resume reports the skipped items with the data they were recorded with.
    events.unlink()
    again = curator(
        "run", "pipelines:numbers", "--resume", "--checkpoint", str(store),
        "--reporter", "json", "--reporter-option", f"json.file={events}", env=env, cwd=tmp_path,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    skipped = [json.loads(line) for line in events.read_text().splitlines()]
    skipped = [e for e in skipped if e["event"] == "task_finish"]
    assert len(skipped) == 10
    for event in skipped:
        assert event["status"] == "skipped"
        assert event["extras"] == finished[event["index"]]["extras"]


def test_a_feature_is_listed_and_switched_off_with_its_plugin(
    extras_site: Path, tmp_path: Path
) -> None:
    rows = {r["name"]: r for r in as_json(curator("plugins", "list", "--json",
                                                  env=subprocess_env(extras_site)))}  # fmt: skip
    assert rows["wall"]["status"] == "loaded"
    assert "feature:wall" in rows["wall"]["provides"]
    events = tmp_path / "events.jsonl"
    ran = curator(
        "run", "pipelines:numbers", "--no-checkpoint", "--reporter", "json",
        "--reporter-option", f"json.file={events}",
        env=subprocess_env(extras_site, CURATOR_DISABLE_PLUGINS="wall"), cwd=tmp_path,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    finished = [json.loads(line) for line in events.read_text().splitlines()]
    assert [e["extras"] for e in finished if e["event"] == "task_finish"] == [None] * 10


@pytest.mark.parametrize("backend", ["sequential", "thread-pool"])
def test_a_feature_that_fails_or_returns_no_json_fails_its_item_named(backend: str) -> None:
    registry = isolated_registry(("broken", fixture.broken))
    result = run(
        numbers(10), backend=backend, jobs=2 if backend == "thread-pool" else None,
        registry=registry, reporter=None, on_error="continue",
    )  # fmt: skip
    failed = {o.index: o.error for o in result.outcomes if o.status is Status.FAILED}
    assert sorted(failed) == [3, 7]
    assert failed[7] is not None
    assert failed[7].message == (
        "the per-item feature 'picky' failed after the item: RuntimeError: no sevens"
    )
    assert failed[3] is not None
    assert failed[3].message.startswith(
        "the per-item feature 'not_json' failed after the item: TypeError: "
    )
    assert result.count(Status.OK) == 8


def test_a_feature_with_a_bad_name_breaks_its_plugin(site: Path) -> None:
    make_distribution(site, "curator-fixture-misnamed", "1.0",
                      {"misnamed": "curator_fixture_extras:misnamed"})  # fmt: skip
    rows = {r["name"]: r for r in as_json(curator("plugins", "list", "--json",
                                                  env=subprocess_env(site)))}  # fmt: skip
    assert rows["misnamed"]["status"] == "broken"
    assert "is not lowercase letters, digits and underscores" in rows["misnamed"]["detail"]


def test_curator_status_shows_a_failures_fields(extras_site: Path, tmp_path: Path) -> None:
    env = subprocess_env(extras_site)
    store = tmp_path / "run.sqlite"
    ran = curator("run", "pipelines:fails_at_3", "--keep-going", "--checkpoint", str(store),
                  "--reporter", "none", env=env, cwd=tmp_path)  # fmt: skip
    assert ran.returncode == 1, ran.stderr
    [failed] = as_json(curator("status", str(store), "--failed", "--json", env=env, cwd=tmp_path))
    assert failed["index"] == 3
    assert failed["extras"]["wall"]["ok"] is False
    assert failed["extras"]["wall"]["seconds"] >= 0


def test_a_features_data_reads_as_json_reads_it_back() -> None:
    """The fast copy of plain data gives exactly what a trip through json gives."""
    import enum
    import math

    from curator.observing.features import as_json

    class Level(enum.IntEnum):
        HIGH = 3

    for value in [
        {"a": (1, 2.5)}, {1: 2, "b": None}, [1.5, "x", None, True, False], {"e": Level.HIGH},
        {"n": {"m": [1, {"k": -0.0}]}}, "text", 7, 2.5, None, (), {},
    ]:  # fmt: skip
        assert as_json(value) == json.loads(json.dumps(value)), value
        assert type(as_json(value)) is type(json.loads(json.dumps(value))), value
    for bad in [math.nan, {"a": math.inf}, [-math.inf], {1, 2}, object(), {"b": b"bytes"}]:
        with pytest.raises((ValueError, TypeError)):
            as_json(bad)


_CALLS: list[tuple[str, str, int, bool | None]] = []
"""Where the pairing features below note their calls (one process: sequential, threads)."""


class _Noting(ItemFeature):
    name = "noting"

    def __init__(self) -> None:
        # A feature may guard what the threads that share it touch (the thread pool
        # copies the pipeline per thread, not the features: found by a review).
        self.lock = threading.Lock()

    def begin(self, index: int) -> Any:
        _CALLS.append(("begin", self.name, index, None))
        return index

    def end(self, index: int, token: Any, ok: bool) -> Any:
        with self.lock:
            _CALLS.append(("end", self.name, index, ok))
        if index == 4:
            raise RuntimeError("end fails on 4")
        return None


class _Second(_Noting):
    name = "second"

    def begin(self, index: int) -> Any:
        if index == 2:
            raise RuntimeError("begin fails on 2")
        return super().begin(index)


class _Pairing:
    @hookimpl
    def curator_register_item_features(self) -> list[type[ItemFeature]]:
        return [_Noting, _Second]


@pytest.mark.parametrize("backend", ["sequential", "thread-pool"])
def test_every_feature_that_began_ends_whatever_fails(backend: str) -> None:
    """Found by a review: a later feature's failed begin, or an earlier one's failed end,
    left features begun and never ended (a plugin's timers, spans, files)."""
    _CALLS.clear()
    result = run(numbers(6), backend=backend, jobs=2 if backend == "thread-pool" else None,
                 registry=isolated_registry(("pairing", _Pairing())), reporter=None,
                 on_error="continue")  # fmt: skip
    failed = {o.index: o.error.message for o in result.outcomes if o.error is not None}
    assert failed[2].startswith("the per-item feature 'second' failed before the item")
    assert failed[4].startswith("the per-item feature 'noting' failed after the item")
    begun = Counter((name, index) for kind, name, index, _ in _CALLS if kind == "begin")
    ended = Counter((name, index) for kind, name, index, _ in _CALLS if kind == "end")
    assert begun == ended, (begun, ended)  # each begin has its end, once
    assert ("noting", 2) in ended  # the first feature ended though the second never began
    assert ("second", 4) in ended  # the second ended though the first's end raised
    assert ("end", "noting", 2, False) in _CALLS
