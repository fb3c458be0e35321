"""The loky backend's options: a value that cannot work is refused before the run."""

from __future__ import annotations

from typing import Any

import pytest

import curator
from curator.testing.probes import Numbers


class _Sum(curator.Sink[int]):
    def __call__(self, items: Any, index: int) -> list[str]:
        return [str(sum(items))]


@pytest.mark.parametrize("in_flight", [0, -5])
def test_no_items_in_flight_is_refused(in_flight: int) -> None:
    """With none queued per worker, the backend ended without running an item (a bug)."""
    with pytest.raises(curator.UsageError, match="in_flight must be 1 or more"):
        curator.run(
            Numbers(4).write(_Sum()), backend="loky", jobs=2, options={"in_flight": in_flight},
            reporter=None,
        )  # fmt: skip
