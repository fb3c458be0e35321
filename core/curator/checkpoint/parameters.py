"""A pipeline's parameters for people: what ``curator status`` lists and compares.

A checkpoint records the description its fingerprint is computed from (see
:func:`curator.checkpoint.fingerprint.describe`). That description covers everything
that could change a result, code included by name: the modules and classes
a function reads, empty lists of defaults, the function's own name. People
want the *parameters*: ``Resize.size: 64``, not ``filter2.size`` beside
``filter1.globals.json.module: 'json'``. :func:`flatten` keeps only those,
named by their stage's class (or function) name, and :func:`differences`
and :func:`variants` compare them between checkpoints.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from curator.checkpoint.catalog import CheckpointReport

SHOWN_VALUE = 40
"""Characters of a parameter's value shown before it is cut."""
_CONTAINERS = frozenset({"set", "frozenset", "tuple"})
"""How the fingerprint marks containers that JSON has no type for."""
_CODE = frozenset({"module", "class", "function", "callable", "method", "partial"})
"""Description keys of code: a global holding one is not a parameter (its own are)."""


def flatten(description: Any) -> dict[str, str]:
    """A pipeline description as ``stage.parameter: value``, in the pipeline's order.

    ``{"source": {"type": "mod.Csv", "state": {"root": "a"}}}`` becomes
    ``{"Csv.root": "'a'"}``. A stage is named by its class or function name
    (``Resize``, ``Resize #2`` for a second one); its parameters are its
    attributes, the plain data its class defines, a function's defaults and
    captured values, and the module-level data its code reads. Modules,
    classes and functions it reads are code, not parameters: left out.
    """
    flat: dict[str, str] = {}
    if not isinstance(description, dict):
        return flat
    if "items" in description:
        flat["items"] = str(description["items"])
    filters = description.get("filters")
    stages = [description.get("source"), *(filters if isinstance(filters, list) else []),
              description.get("sink")]  # fmt: skip
    seen: dict[str, int] = {}
    for stage in stages:
        name = _stage_name(stage)
        seen[name] = seen.get(name, 0) + 1
        _stage(stage, name if seen[name] == 1 else f"{name} #{seen[name]}", flat)
    return flat


def _stage_name(stage: Any) -> str:
    if isinstance(stage, dict):
        for key in ("type", "function", "method", "callable"):
            if isinstance(stage.get(key), str):
                return _short(stage[key])
        if "partial" in stage:
            return _stage_name(stage["partial"])
    return "stage"


def _short(qualified: str) -> str:
    """``mod.sub.Resize`` as ``Resize``; ``mod.outer.<locals>.inner`` as ``inner``."""
    return qualified.rsplit(".", 1)[-1]


def _stage(stage: Any, path: str, flat: dict[str, str]) -> None:
    """The parameters of one stage's (or callable's) description, under ``path``."""
    if not isinstance(stage, dict):
        _value(stage, path, flat)
        return
    if "custom" in stage:  # __curator_fingerprint__: what the stage says determines it
        _value(stage["custom"], path, flat)
        return
    for key in ("state", "class", "reduced"):
        for name, value in _items(stage.get(key)):
            _value(value, f"{path}.{name}", flat)
    if "partial" in stage:
        _stage(stage["partial"], path, flat)
        _nonempty(stage.get("args"), f"{path}.args", flat)
        for name, value in _items(stage.get("keywords")):
            _value(value, f"{path}.{name}", flat)
    if "self" in stage:  # a bound method: its instance's parameters
        _stage(stage["self"], path, flat)
    if "function" in stage:
        _nonempty(stage.get("defaults"), f"{path}.defaults", flat)
        for name, value in [*_items(stage.get("kwdefaults")), *_pairs(stage.get("closure"))]:
            _value(value, f"{path}.{name}", flat)
    read = [*_items(stage.get("globals")), *_items(stage.get("data_methods_read"))]
    for name, value in read:
        if _is_code(value):
            _stage_params_only(value, f"{path}.{name}", flat)
        else:
            _value(value, f"{path}.{name}", flat)
    if "pipeline" in stage:
        for key, value in flatten(stage["pipeline"]).items():
            flat[f"{path}.{key}"] = value


def _stage_params_only(code: Any, path: str, flat: dict[str, str]) -> None:
    """A function or class its code reads: only what parameterizes it (a helper's globals)."""
    if isinstance(code, dict) and not ({"module", "class"} & set(code)):
        _stage(code, path, flat)


def _is_code(value: Any) -> bool:
    return isinstance(value, dict) and bool(_CODE & set(value)) and "state" not in value


def _items(value: Any) -> Iterable[tuple[str, Any]]:
    """The entries of a described mapping: a dict, or the fingerprint's ``{"dict": [...]}``."""
    if isinstance(value, dict) and set(value) == {"dict"}:
        return _pairs(value["dict"])
    return value.items() if isinstance(value, dict) else ()


def _pairs(value: Any) -> list[tuple[str, Any]]:
    if not isinstance(value, list):
        return []
    return [
        (entry[0] if isinstance(entry[0], str) else _shown(entry[0]), entry[1])
        for entry in value
        if isinstance(entry, (list, tuple)) and len(entry) == 2
    ]


def _nonempty(value: Any, path: str, flat: dict[str, str]) -> None:
    if value not in (None, [], {}):
        _value(value, path, flat)


def _value(value: Any, path: str, flat: dict[str, str]) -> None:
    """One attribute's value: plain data as it is, a nested object by its own parameters."""
    if isinstance(value, dict):
        if set(value) == {"path"}:
            flat[path] = _shown(value["path"])
        elif len(value) == 1 and next(iter(value)) in _CONTAINERS:
            flat[path] = _shown(next(iter(value.values())))
        elif "sha256" in value and set(value) <= {"sha256", "bytes"}:
            flat[path] = f"<sha256 {str(value['sha256'])[:12]}>"
        elif set(value) == {"dict"}:
            pairs = _pairs(value["dict"])
            if not pairs:
                flat[path] = "{}"
            for key, item in pairs:
                _value(item, f"{path}.{key}", flat)
        elif set(value) == {"module"}:
            flat[path] = str(value["module"])
        elif set(value) == {"class"}:
            flat[path] = _short(str(value["class"]))
        elif set(value) == {"enum", "value"}:
            flat[path] = f"{_short(str(value['enum']))}({_shown(value['value'])})"
        elif _CODE & set(value) or "type" in value:
            name = _stage_name(value)
            if name != "stage":
                flat[path] = name
            _stage(value, path, flat)
        else:
            for key, item in value.items():
                _value(item, f"{path}.{key}", flat)
    elif isinstance(value, list) and value and any(isinstance(v, (dict, list)) for v in value):
        for position, item in enumerate(value):
            _value(item, f"{path}[{position}]", flat)
    else:
        flat[path] = _shown(value)


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = repr(text) if isinstance(value, str) else text
    return text if len(text) <= SHOWN_VALUE else text[: SHOWN_VALUE - 3] + "..."


def differences(mine: dict[str, str], theirs: dict[str, str]) -> list[str]:
    """``path: here -> there`` for every parameter that differs between two flattened pipelines."""
    keys = [*mine, *(key for key in theirs if key not in mine)]
    return [
        f"{key}: {mine.get(key, '-')} here, {theirs.get(key, '-')} there"
        for key in keys
        if mine.get(key) != theirs.get(key)
    ]


def variants(reports: list[CheckpointReport]) -> dict[Path, str]:
    """Per checkpoint, the parameters that tell it apart from others of the same pipeline class."""
    groups: dict[str, list[CheckpointReport]] = {}
    for report in reports:
        groups.setdefault(report.pipeline, []).append(report)
    described: dict[Path, str] = {}
    for group in groups.values():
        keys = list(dict.fromkeys(key for report in group for key in report.parameters))
        if len(group) > 1:
            keys = [k for k in keys if len({r.parameters.get(k) for r in group}) > 1]
        else:
            keys = [k for k in keys if k != "items"][:3]  # alone: its first few parameters
        for report in group:
            shown = [f"{k}={report.parameters.get(k, '-')}" for k in keys]
            described[report.path] = ", ".join(shown) or "-"
    return described
