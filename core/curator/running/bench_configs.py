"""What ``curator bench`` measures: the configurations, the sample, the options.

A configuration is a backend, its job count and a chunk size; which ones a
bench runs follows from the backends installed (or named), the job counts
asked for and the backends' options (see :func:`configurations`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from curator.backends.backend import normalize_name
from curator.model.errors import UsageError
from curator.plugin_host.options import build_options
from curator.plugin_host.registry import Registry


@dataclass(frozen=True)
class Config:
    """One way to run: a backend, its job count, and a chunk size (``None``: its default)."""

    backend: str
    jobs: int
    chunksize: int | None = None

    @property
    def label(self) -> str:
        """``process-pool -j 2 (chunksize 16)``."""
        chunk = "" if self.chunksize is None else f" (chunksize {self.chunksize})"
        return f"{self.backend} -j {self.jobs}{chunk}"


def sample_indices(size: int, count: int) -> list[int]:
    """``count`` indices spread evenly over ``range(size)`` (all of them if fewer)."""
    if count >= size:
        return list(range(size))
    step = size / count
    return sorted({min(size - 1, int(i * step + step / 2)) for i in range(count)})


def configurations(
    registry: Registry,
    backends: Sequence[str] | None,
    jobs: Sequence[int] | None,
    sample: int,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    skipped: Callable[[str, str], None] | None = None,
) -> list[Config]:
    """Every configuration to measure.

    Each usable backend (or those asked for), at job counts 2 and every CPU (or
    those asked for), and chunk sizes where the backend has them (unless
    its ``options``, the backend options asked for by backend, fix one). Backends
    whose items run as batch jobs are measured only when asked for (see
    :func:`not_measured`). A parallel backend is not measured at one job
    (it would run its items in this process, as ``sequential`` does),
    unless its items run as jobs: ``skipped`` hears of it.

    Raises
    ------
    UsageError
        For job counts asked for when every backend named runs one item at
        a time (``-b sequential -j 2``), as ``curator run`` refuses them.
    """
    cpus = os.cpu_count() or 1
    counts = sorted(set(jobs)) if jobs else sorted({2, max(2, cpus)})
    if backends:
        names = list(dict.fromkeys(_usable(registry, name) for name in backends))  # once each
    else:
        left_out = {name for name, _ in not_measured(registry, backends)}
        names = [
            name
            for name, entry in registry.backends.items()
            if entry.status == "ok" and name not in left_out
        ]
    serial = [name for name in names if not registry.backend(name).capabilities.parallel]
    if backends and jobs and serial == names and any(count != 1 for count in jobs):
        asked = ",".join(str(count) for count in jobs)
        raise UsageError(
            f"backend {', '.join(map(repr, serial))} runs one item at a time, so -j {asked} "
            "needs a parallel backend among those named with -b (such as -b process-pool)"
        )
    found: list[Config] = []
    for name in names:
        cls = registry.backend(name)
        own = (options or {}).get(name, {})
        if not cls.capabilities.parallel:
            found.append(Config(name, 1))
            continue
        chunked = "chunksize" in {f.name for f in dataclasses.fields(cls.Options)}
        for count in counts:
            if count < 2 and not cls.capabilities.runs_elsewhere:  # a batch job runs elsewhere
                if skipped is not None:
                    skipped(name, f"-j {count}: with one job it runs its items in this process, "
                            "as sequential does")  # fmt: skip
            elif chunked and "chunksize" in own:  # the user's own, alone
                owner = f"backend {name!r}"  # each backend converts it as it reads it
                asked = build_options(cls.Options, {"chunksize": own["chunksize"]}, owner=owner)
                found.append(Config(name, count, asked.chunksize))
            elif chunked:
                large = max(2, sample // (count * 4))
                found += [Config(name, count), Config(name, count, 1), Config(name, count, large)]
            else:
                found.append(Config(name, count))
    return found


def not_measured(registry: Registry, backends: Sequence[str] | None) -> list[tuple[str, str]]:
    """The installed backends a bench leaves out unless asked for, each with the reason.

    Those whose items run elsewhere, as jobs of a batch system: each
    configuration would submit jobs to a cluster's queue, wait there, and
    take seconds to start a job, which a sample of a few items cannot weigh.
    """
    if backends:
        return []
    return [
        (name, f"its items run as batch jobs; measure it with -b {name}")
        for name, entry in registry.backends.items()
        if entry.status == "ok" and entry.cls is not None and entry.cls.capabilities.runs_elsewhere
    ]


def _usable(registry: Registry, name: str) -> str:
    registry.backend(name)  # raises the registry's own error for an unknown or broken one
    return normalize_name(name)


def checked_options(
    registry: Registry,
    backends: Sequence[str] | None,
    options: Mapping[str, Any] | None,
    own: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """The options each backend runs with, as given (each backend converts its own).

    ``options`` (``-o KEY=VALUE``) are for every backend named in ``backends``;
    ``own`` (``-o BACKEND:KEY=VALUE``) for one backend each, on top. Every
    backend must take all of its options.

    Raises
    ------
    UsageError
        For options without backends named, options for a backend that is
        not measured, or one that its backend refuses.
    """
    if options and not backends:
        raise UsageError(
            "backend options (-o KEY=VALUE) need the backends they are for (-b NAME), or "
            "the backend's name before the key (-o NAME:KEY=VALUE): every backend has "
            "options of its own"
        )
    named = [_usable(registry, name) for name in backends or ()]
    found: dict[str, dict[str, Any]] = {name: dict(options or {}) for name in named}
    for name, given in (own or {}).items():
        usable = _usable(registry, name)
        twice = sorted(set(given) & set(options or {}))
        if twice:
            raise UsageError(
                f"option {twice[0]!r} is given for every backend and for backend {usable!r}: "
                "give it once"
            )
        if named and usable not in named:
            raise UsageError(
                f"options are given for backend {usable!r}, which -b does not name: name it "
                f"too (-b {usable})"
            )
        if not named and registry.backend(usable).capabilities.runs_elsewhere:
            raise UsageError(
                f"options are given for backend {usable!r}, whose items run as batch jobs: "
                f"the bench measures it only when named (-b {usable})"
            )
        found[usable] = {**found.get(usable, {}), **given}
    for name, given in found.items():
        build_options(registry.backend(name).Options, given, owner=f"backend {name!r}")
    return {name: given for name, given in found.items() if given}
