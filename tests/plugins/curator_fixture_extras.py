"""Per-item features of a third-party plugin: a field of its own on every item, and broken ones.

``Seconds`` is what a plugin author would write: it measures each item in the
worker and returns JSON. The core knows nothing of it; the tests show it in
events, the checkpoint, a resume and ``curator logs``.
"""

from __future__ import annotations

import os
import time
from typing import Any

from curator import ItemFeature, hookimpl


class Seconds(ItemFeature):
    name = "wall"
    description = "Each item's wall time and process, measured where it ran."

    def begin(self, index: int) -> Any:
        return time.perf_counter()

    def end(self, index: int, token: Any, ok: bool) -> Any:
        return {"seconds": time.perf_counter() - token, "pid": os.getpid(), "ok": ok}


@hookimpl
def curator_register_item_features() -> list[type[ItemFeature]]:
    return [Seconds]


class FailsOnSeven(ItemFeature):
    name = "picky"
    description = "Raises around item 7."

    def end(self, index: int, token: Any, ok: bool) -> Any:
        if index == 7:
            raise RuntimeError("no sevens")
        return None


class NotJson(ItemFeature):
    name = "not_json"
    description = "Returns a set, which is not JSON."

    def end(self, index: int, token: Any, ok: bool) -> Any:
        return {index} if index == 3 else None


class BadName(ItemFeature):
    name = "Bad Name"


class Broken:
    @hookimpl
    def curator_register_item_features(self) -> list[type[ItemFeature]]:
        return [FailsOnSeven, NotJson]


broken = Broken()


class Misnamed:
    @hookimpl
    def curator_register_item_features(self) -> list[type[ItemFeature]]:
        return [BadName]


misnamed = Misnamed()
