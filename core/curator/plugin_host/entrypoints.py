"""The entry points of one group, read from the installed distributions' folders.

Every run and command starts by finding the ``curator`` plugins. Through
:mod:`importlib.metadata` that cost about 15 ms before the first plugin was
looked at, most of it importing the module itself (it pulls in ``email``,
``zipfile``, ``csv`` and more to parse metadata nobody here reads). What the
plugin host needs is small: which distributions on the path declare the
group, their entry points, and the name, version and requirements of those
few. So this module reads them straight from the folders, as
:mod:`importlib.metadata` does itself: each path entry's ``*.dist-info`` and
``*.egg-info`` folders, in path order, the first of a name winning.

Anything it does not read the same way (a zip or ``.egg`` on the path, a
finder with distributions of its own on :data:`sys.meta_path`) makes it hand
the whole search to :mod:`importlib.metadata`, so the answer never differs.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from curator.plugin_host.class_ref import import_object


@dataclass(frozen=True)
class EntryPoint:
    """One entry point of the group, with the distribution that declares it."""

    name: str
    value: str
    """``module`` or ``module:attribute``."""
    distribution: str
    """The distribution's name as its metadata spells it."""
    version: str
    requires: tuple[str, ...]
    """Its ``Requires-Dist`` lines (or an egg's ``requires.txt``)."""

    def load(self) -> Any:
        """Import the module and return the attribute (or the module)."""
        target = self.value.partition("[")[0]  # "module:attr [extra]": the extras are not ours
        module, _, attribute = target.partition(":")
        return import_object(module.strip(), attribute.strip())


def canonical(name: str) -> str:
    """A distribution name as packaging compares them (``Foo_Bar`` is ``foo-bar``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def entry_points(group: str, path: Iterable[str] | None = None) -> list[EntryPoint]:
    """The entry points of ``group``, by distribution name, then by entry-point name.

    ``path``: where to look (default :data:`sys.path`). Only the first
    distribution of a name on the path counts: it is the one Python imports.
    """
    # sys.path may hold os.PathLike entries (a conftest's Path); anything else is skipped.
    entries = [
        os.fspath(entry)
        for entry in (sys.path if path is None else path)
        if isinstance(entry, str | os.PathLike)
    ]
    if not _readable_here(entries):
        return _from_importlib(group, entries, path is None)
    first: dict[str, str] = {}  # canonical name -> its info folder
    for entry in entries:
        folder = entry or "."
        try:
            children = os.listdir(folder)
        except OSError:
            continue
        for child in children:  # hundreds per folder: only cheap string tests here
            tail = child[-10:].lower()
            if tail == ".dist-info":
                stem = child[:-10]
            elif tail.endswith(".egg-info"):
                stem = child[:-9]
            else:
                continue
            if not stem:  # a folder named just ".dist-info": no distribution
                continue
            first.setdefault(canonical(stem.partition("-")[0]), os.path.join(folder, child))
    found: list[EntryPoint] = []
    for key in sorted(first):
        declared = _group_of(first[key], group)
        if declared:
            name, version, requires = _metadata(first[key])
            found += [
                EntryPoint(ep, value, name or key, version, requires)
                for ep, value in sorted(declared, key=lambda pair: pair[0])
            ]
    return found


def _readable_here(entries: list[str]) -> bool:
    """Whether every place distributions can come from is a plain folder this module reads."""
    for entry in entries:
        if entry.lower().endswith(".egg") or (entry and os.path.isfile(entry)):
            return False  # an egg or a zip: importlib.metadata reads those
    path_finder = importlib.machinery.PathFinder
    return not any(
        hasattr(finder, "find_distributions") and finder is not path_finder
        for finder in sys.meta_path
    )


def _group_of(info: str, group: str) -> list[tuple[str, str]]:
    """The entry points of ``group`` an info folder declares (name, value), in file order."""
    try:
        with open(os.path.join(info, "entry_points.txt"), "rb") as file:
            data = file.read()
    except OSError:
        return []
    if f"[{group}]".encode() not in data:  # most distributions: no need to decode or parse
        return []
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return []
    declared: list[tuple[str, str]] = []
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
        elif section == group and "=" in line:
            name, _, value = line.partition("=")
            declared.append((name.strip(), value.strip()))
    return declared


def _metadata(info: str) -> tuple[str, str, tuple[str, ...]]:
    """Name, version and requirements from an info folder's headers (the body is not read)."""
    egg = info.lower().endswith(".egg-info")
    headers: dict[str, list[str]] = {}
    try:
        with open(os.path.join(info, "PKG-INFO" if egg else "METADATA"), encoding="utf-8") as file:
            for line in file:
                if not line.strip():
                    break  # the headers end at the first blank line
                if line[0] in " \t":
                    continue  # a folded continuation (a long description field)
                key, _, value = line.partition(":")
                headers.setdefault(key.strip().lower(), []).append(value.strip())
    except (OSError, UnicodeDecodeError):
        pass
    requires = tuple(headers.get("requires-dist", ()))
    if egg and not requires:
        requires = _egg_requires(info)
    return (
        (headers.get("name") or [""])[0],
        (headers.get("version") or ["unknown"])[0],
        requires,
    )


def _egg_requires(info: str) -> tuple[str, ...]:
    """An egg's ``requires.txt`` as ``Requires-Dist`` lines (sections become markers)."""
    try:
        with open(os.path.join(info, "requires.txt"), encoding="utf-8") as file:
            lines = file.read().splitlines()
    except (OSError, UnicodeDecodeError):
        return ()
    kept: list[str] = []
    marker = ""
    for line in map(str.strip, lines):
        if line.startswith("[") and line.endswith("]"):
            extra, _, markers = line[1:-1].partition(":")
            if extra and markers:
                markers = f"({markers})"
            conditions = [c for c in (markers, extra and f'extra == "{extra}"') if c]
            marker = "; " + " and ".join(conditions) if conditions else ""
        elif line and not line.startswith("#"):
            kept.append(line + marker)
    return tuple(kept)


def _from_importlib(group: str, entries: list[str], default_path: bool) -> list[EntryPoint]:
    """:func:`entry_points` through :mod:`importlib.metadata` (what this module cannot read)."""
    import importlib.metadata

    distributions = (
        importlib.metadata.distributions()
        if default_path
        else importlib.metadata.distributions(path=entries)
    )
    first: dict[str, importlib.metadata.Distribution] = {}
    for dist in distributions:
        name = getattr(dist, "_normalized_name", None) or dist.metadata["Name"] or "unknown"
        first.setdefault(canonical(name), dist)
    found: list[EntryPoint] = []
    for key in sorted(first):
        dist = first[key]
        declared = sorted(
            (ep for ep in dist.entry_points if ep.group == group), key=lambda ep: ep.name
        )
        if declared:
            metadata = dist.metadata
            requires = tuple(metadata.get_all("Requires-Dist") or dist.requires or ())
            found += [
                EntryPoint(
                    ep.name, ep.value, metadata["Name"] or key, metadata["Version"], requires
                )
                for ep in declared
            ]
    return found
