"""The kit's checks of per-item features: a plugin's own field travels with each item.

A mixin of :class:`curator.testing.BackendConformance`. A plugin's
:class:`curator.ItemFeature` runs inside :class:`curator.Work`, so a backend
gets it by calling the work; one that builds outcomes itself from
:meth:`curator.Work.run_index` must carry :attr:`curator.Work.extras` along
(as :attr:`curator.Successes.extras` or on its outcomes). The field is the
kit's own, unknown to the core: it must reach the outcomes, the ``json``
reporter's events and the checkpoint, and come back on ``--resume``.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from curator.checkpoint.latest import read_latest
from curator.model.outcome import Status
from curator.observing.features import ItemFeature
from curator.plugin_host.hookspecs import hookimpl
from curator.plugin_host.plugins import PluginSettings
from curator.plugin_host.registry import Registry
from curator.testing.mixin import KitMixin

FIELD = "kit_probe"


class ItemProbe(ItemFeature):
    """Records, where each item ran, its index, whether it ended ok, the process and its time."""

    name = FIELD
    description = "The conformance kit's per-item field."

    def begin(self, index: int) -> Any:
        """The clock when the item starts."""
        return time.perf_counter()

    def end(self, index: int, token: Any, ok: bool) -> Any:
        """What the item was, how it ended, where it ran, how long it took."""
        return {
            "index": index,
            "ok": ok,
            "pid": os.getpid(),
            "seconds": time.perf_counter() - token,
        }


class ProbePlugin:
    """A plugin that provides :class:`ItemProbe`."""

    @hookimpl
    def curator_register_item_features(self) -> list[type[ItemFeature]]:
        """Provide :class:`ItemProbe`."""
        return [ItemProbe]


class ExtrasChecks(KitMixin):
    """A plugin's per-item field reaches outcomes, events, the checkpoint, and a resume."""

    def probe_registry(self) -> Registry:
        """The kit's registry with :class:`ProbePlugin` added."""
        return Registry.load(
            PluginSettings(strict=False),
            entrypoints=self.load_entrypoints,
            plugins=[*self.plugins, ("kit-item-probe", ProbePlugin())],
        )

    def test_a_plugins_per_item_field_reaches_outcomes_events_and_checkpoint(self) -> None:
        """Every item that ran carries the field, failed ones too; a resume reads it back."""
        registry = self.probe_registry()
        store = self.folder.parent / "extras.sqlite"
        events = self.folder.parent / "events.jsonl"
        result = self.run(
            30, flaky=frozenset({4}), registry=registry, checkpoint=store,
            reporter="json", reporter_options={"json": {"file": str(events)}},
        )  # fmt: skip
        assert result.count(Status.OK) == 29
        seen: dict[int, Any] = {}
        for outcome in result.outcomes:
            extras = outcome.extras
            assert extras is not None, outcome
            assert FIELD in extras, (
                f"item {outcome.index} ran but carries no {FIELD!r}: a backend that builds "
                "outcomes from Work.run_index must carry Work.extras (or call the work)"
            )
            data = extras[FIELD]
            assert data["index"] == outcome.index, data
            assert data["ok"] is outcome.ok, data
            assert data["seconds"] >= 0
            seen[outcome.index] = data
        finished = [
            json.loads(line) for line in events.read_text().splitlines()
            if json.loads(line)["event"] == "task_finish"
        ]  # fmt: skip
        assert sorted(e["index"] for e in finished) == list(range(30))
        for event in finished:
            assert event["extras"] == {FIELD: seen[event["index"]]}, event
        stored = read_latest(store)
        assert {i: s.extras for i, s in stored.items()} == {
            i: {FIELD: data} for i, data in seen.items()
        }, "the checkpoint does not hold each item's field as it ran"
        # The flaky item fails its first attempt only: the resume runs it again.
        resumed = self.run(
            30, flaky=frozenset({4}), registry=registry, checkpoint=store, resume=True
        )
        assert resumed.count(Status.SKIPPED) == 29
        for outcome in resumed.outcomes:
            assert outcome.extras is not None, outcome
            if outcome.status is Status.SKIPPED:
                assert outcome.extras == {FIELD: seen[outcome.index]}, outcome
            else:  # the failed item ran again, and measured again
                assert outcome.index == 4, outcome
                assert outcome.ok, outcome
                assert outcome.extras[FIELD]["ok"] is True, outcome

    def test_without_the_plugin_items_carry_no_extras(self) -> None:
        """No feature installed: nothing is recorded, on any item."""
        result = self.run(6, fail=frozenset({2}))
        assert [o.extras for o in result.outcomes] == [None] * 6
