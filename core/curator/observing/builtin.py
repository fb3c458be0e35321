"""The built-in per-item features, capture and metrics, as plugins of their own.

Each registers through ``curator_register_item_features`` like a third-party
feature and is listed by ``curator plugins list`` (``builtin-capture``, ``builtin-metrics``);
disabling it by name (``CURATOR_DISABLE_PLUGINS=builtin-capture``) switches it off for
every run of the process, as ``--no-capture`` (``capture=False``) does for one
run. Their work around each item is the core's own, in :class:`curator.Work`
(capture buffers, the stage meter), not the generic ``begin``/``end`` calls:
it runs for every item of every run and is kept at the cost of a few
attribute reads; their data keeps its own columns (``Outcome.output``,
``Outcome.metrics``) and JSON fields, as before.
"""

from __future__ import annotations

from curator.observing.features import CoreFeature, ItemFeature
from curator.plugin_host.hookspecs import hookimpl


class Capture(CoreFeature):
    """What each item writes to stdout, stderr and logging (:mod:`curator.observing.capture`)."""

    name = "capture"
    description = "What each item prints and logs, kept with its outcome (--no-capture)."


class Measure(CoreFeature):
    """Seconds per stage, CPU time and memory of each item (:mod:`curator.observing.metrics`)."""

    name = "metrics"
    description = "Each item's seconds per stage, CPU time and memory (--no-metrics)."


class Provides:
    """A built-in plugin that provides one feature (each is switched off by its own name)."""

    def __init__(self, feature: type[ItemFeature]) -> None:
        self.feature = feature

    @hookimpl
    def curator_register_item_features(self) -> list[type[ItemFeature]]:
        """Provide the feature."""
        return [self.feature]


capture = Provides(Capture)
metrics = Provides(Measure)
