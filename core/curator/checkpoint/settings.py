"""What a run was asked for, recorded in its checkpoint so that a resume can repeat it.

``curator run TARGET --resume`` reads the last run's :class:`RunSettings` from
the checkpoint and uses them for every flag not given again; the resume hint
printed after an interrupted or failed run is therefore simply
``curator run TARGET --resume``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from curator.model.selection import format_indices


@dataclass(frozen=True)
class RunSettings:
    """The arguments of one run, as plain JSON-ready values.

    The defaults are those of :func:`curator.run` and of ``curator run``.
    What cannot be recorded is named in ``unrecorded``: options whose values
    are Python objects rather than plain data (``-o NAME``), and an index
    selection longer than :data:`MAX_RECORDED_SPEC` characters (``--indices``).
    """

    target: str | None = None
    backend: str = "sequential"
    jobs: int | None = None
    indices: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    on_error: str = "raise"
    max_failures: int | None = None
    retries: int = 0
    retry_delay: float = 0.0
    retry_backoff: float = 2.0
    timeout: float | None = None
    grace: float = 30.0
    setup_timeout: float | None = None
    teardown_timeout: float | None = None
    metrics: bool | str = True
    capture: bool = True
    reporter: tuple[str, ...] = ("auto",)
    reporter_options: dict[str, dict[str, Any]] = field(default_factory=dict)
    unrecorded: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """A JSON object (lists for tuples)."""
        data = dataclasses.asdict(self)
        data["reporter"] = list(self.reporter)
        data["unrecorded"] = list(self.unrecorded)
        return data

    @classmethod
    def from_json(cls, data: object) -> RunSettings | None:
        """Read recorded settings; ``None`` when there are none or they do not fit.

        A checkpoint is data from disk: a field with a value of the wrong
        shape is dropped (its default applies) rather than trusted.
        """
        if not isinstance(data, Mapping):
            return None
        defaults = cls()
        values: dict[str, Any] = {}
        for item in dataclasses.fields(cls):
            if item.name not in data:
                continue
            value = data[item.name]
            if isinstance(getattr(defaults, item.name), tuple) and isinstance(value, list):
                value = tuple(value)
            if _fits(item.name, value):
                values[item.name] = value
        return cls(**values)

    def differences(self) -> dict[str, Any]:
        """The fields that differ from the defaults (``target`` and ``unrecorded`` aside)."""
        defaults = RunSettings()
        return {
            item.name: getattr(self, item.name)
            for item in dataclasses.fields(self)
            if item.name not in ("target", "unrecorded")
            and getattr(self, item.name) != getattr(defaults, item.name)
        }

    def flags(self, names: Sequence[str] | None = None) -> list[str]:
        """The ``curator run`` flags for these settings: the non-default ones, or ``names``."""
        chosen = self.differences()
        if names is not None:
            chosen = {name: getattr(self, name) for name in names}
        words: list[str] = []
        for name, value in chosen.items():
            words += _flag(name, value)
        return words


_FLAGS = {
    "backend": "-b",
    "jobs": "-j",
    "indices": "--indices",
    "max_failures": "--max-failures",
    "retries": "--retries",
    "retry_delay": "--retry-delay",
    "retry_backoff": "--retry-backoff",
    "timeout": "--timeout",
    "grace": "--grace",
    "setup_timeout": "--setup-timeout",
    "teardown_timeout": "--teardown-timeout",
}


def _flag(name: str, value: Any) -> list[str]:
    if name == "on_error":
        return ["--keep-going"] if value == "continue" else ["--no-keep-going"]
    if name == "metrics" and value == "all":
        return ["--all-metrics"]
    if name in ("metrics", "capture"):
        return [f"--{name}"] if value else [f"--no-{name}"]
    if name == "options":
        return [word for key, v in value.items() for word in ("-o", f"{key}={_text(v)}")]
    if name == "reporter":
        return [word for reporter in value for word in ("--reporter", reporter)]
    if name == "reporter_options":
        return [
            word
            for reporter, pairs in value.items()
            for key, v in pairs.items()
            for word in ("--reporter-option", f"{reporter}.{key}={_text(v)}")
        ]
    if value is None:
        return []  # nothing to say: the default applies
    return [_FLAGS[name], _text(value)]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


_OPTIONAL_SECONDS = ("timeout", "setup_timeout", "teardown_timeout")


def _fits(name: str, value: object) -> bool:
    if name in ("target", "indices"):
        return value is None or isinstance(value, str)
    if name in ("backend", "on_error"):
        return isinstance(value, str) and (name != "on_error" or value in ("raise", "continue"))
    if name in ("jobs", "max_failures"):
        return value is None or (isinstance(value, int) and not isinstance(value, bool))
    if name == "retries":
        return isinstance(value, int) and not isinstance(value, bool)
    if name in ("retry_delay", "retry_backoff", "grace", *_OPTIONAL_SECONDS):
        return (value is None and name in _OPTIONAL_SECONDS) or (
            isinstance(value, (int, float)) and not isinstance(value, bool)
        )
    if name in ("metrics", "capture"):
        return isinstance(value, bool) or (name == "metrics" and value == "all")
    if name in ("options",):
        return isinstance(value, dict)
    if name == "reporter_options":
        return isinstance(value, dict) and all(isinstance(v, dict) for v in value.values())
    return isinstance(value, tuple) and all(isinstance(v, str) for v in value)


def plain_options(options: Mapping[str, Any] | None) -> tuple[dict[str, Any], tuple[str, ...]]:
    """Split options into those JSON can record and the ``-o NAME`` of the others."""
    recorded: dict[str, Any] = {}
    skipped: list[str] = []
    for key, value in (options or {}).items():
        if _is_plain(value):
            recorded[str(key)] = list(value) if isinstance(value, tuple) else value
        else:
            skipped.append(f"-o {key}")
    return recorded, tuple(skipped)


def _is_plain(value: object) -> bool:
    if value is None or isinstance(value, (str, bool, int)):
        return True
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_plain(v) for k, v in value.items())
    return False


MAX_RECORDED_SPEC = 100_000
"""Characters of an index selection recorded at most (a million scattered indices are not)."""


def describe_indices(indices: Sequence[int] | None, size: int) -> str | None:
    """The ``--indices`` spec of a selection, ``None`` for every index in order."""
    if indices is None or (isinstance(indices, range) and indices == range(size)):
        return None
    return format_indices(indices)


def record_indices(indices: Sequence[int], size: int) -> tuple[str | None, tuple[str, ...]]:
    """The spec to record for a selection, and ``("--indices",)`` when it is too long."""
    spec = describe_indices(indices, size)
    if spec is not None and len(spec) > MAX_RECORDED_SPEC:
        return None, ("--indices",)
    return spec, ()
