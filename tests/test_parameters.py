"""The parameters `curator status` lists: by stage class, parameters only (issue 25)."""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Iterator

from pipelines import Collect, Numbers

from curator.checkpoint.fingerprint import describe
from curator.checkpoint.parameters import differences, flatten

THRESHOLD = 0.5


class Mode(enum.Enum):
    FAST = "fast"


def _helper(value: int) -> int:
    return value if value > THRESHOLD else 0  # a global the helper reads is a parameter


def clip(items: Iterator[int], low: int = 0, *, high: int = 9) -> Iterator[int]:
    for item in items:
        yield _helper(min(max(item, low), high))


class Configured:
    kind = "plain"  # class data: a parameter

    def __init__(self) -> None:
        self.options = {"level": 3, "names": ["a", "b"]}
        self.codec = json  # a module chosen as an attribute is the user's choice
        self.mode = Mode.FAST
        self.transform = clip

    def __call__(self, items: Iterator[int]) -> Iterator[int]:
        return (item for item in items if item > THRESHOLD)  # a data method's global


class Fixed:
    def __curator_fingerprint__(self) -> dict[str, int]:
        return {"version": 2}

    def __call__(self, items: Iterator[int]) -> Iterator[int]:
        return items


def test_parameters_of_every_kind_of_stage() -> None:
    pipeline = (
        Numbers(3)
        .filter(functools.partial(clip, high=5))
        .filter(Configured())
        .filter(Fixed())
        .filter(clip)
        .write(Collect())
    )
    flat = flatten(describe(pipeline))
    assert flat == {
        "items": "3",
        "Numbers.count": "3",
        "clip.high": "5",
        "clip.defaults": "[0]",
        "clip._helper.THRESHOLD": "0.5",
        "Configured.codec": "json",
        "Configured.mode": "Mode('fast')",
        "Configured.options.level": "3",
        "Configured.options.names": '["a", "b"]',
        "Configured.transform": "clip",
        "Configured.transform.defaults": "[0]",
        "Configured.transform.high": "9",
        "Configured.transform._helper.THRESHOLD": "0.5",
        "Configured.kind": "'plain'",
        "Configured.THRESHOLD": "0.5",
        "Fixed.version": "2",
        "clip #2.defaults": "[0]",
        "clip #2.high": "9",
        "clip #2._helper.THRESHOLD": "0.5",
        "Collect.calls": "0",
        "Collect.seen": "[]",
    }


def test_differences_follow_the_pipeline_order() -> None:
    mine = flatten(describe(Numbers(3).filter(clip).write(Collect())))
    theirs = flatten(describe(Numbers(4).filter(clip).write(Collect())))
    assert differences(mine, theirs) == [
        "items: 3 here, 4 there",
        "Numbers.count: 3 here, 4 there",
    ]
