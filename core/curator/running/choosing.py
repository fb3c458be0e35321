"""What listens to a run and what runs around its items, chosen from the registry.

The ``reporter`` argument of :func:`curator.run` (names, instances, ``"auto"``)
becomes reporter instances with their checked options; every installed
per-item feature (see :mod:`curator.observing.features`) gets one instance per run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from curator.backends.backend import normalize_name
from curator.model.errors import PluginError, UsageError
from curator.observing.features import ItemFeature
from curator.observing.reporter import Reporter
from curator.observing.reporters import auto_reporter
from curator.plugin_host.options import build_options
from curator.plugin_host.registry import Registry

ReporterSpec = str | Reporter | None | Sequence[str | Reporter]


def item_features(registry: Registry) -> tuple[ItemFeature, ...]:
    """One instance of each usable per-item feature (:mod:`curator.observing.features`), for a run.

    Raises
    ------
    PluginError
        When a feature class cannot be made (its plugin's bug, named).
    """
    made = []
    for entry in registry.features.values():
        if entry.cls is None or entry.status != "ok":
            continue
        try:
            made.append(entry.cls())
        except Exception as exc:
            raise PluginError(
                f"the per-item feature {entry.cls.name!r} of {entry.plugin.describe()} cannot "
                f"be made: {type(exc).__name__}: {exc}"
            ) from exc
    return tuple(made)


def resolve_reporters(
    spec: ReporterSpec,
    registry: Registry,
    reporter_options: Mapping[str, Mapping[str, Any]] | None = None,
) -> list[Reporter]:
    """Turn the ``reporter`` argument into reporter instances.

    Parameters
    ----------
    spec
        A name (``"auto"`` picks ``rich`` on an interactive terminal, else
        ``log``), a :class:`~curator.Reporter` instance, a list of them, or ``None``.
    registry
        Where names are looked up.
    reporter_options
        Options per reporter name, validated against each reporter's schema.

    Raises
    ------
    UsageError
        For an unknown name, a name given twice, an object that is not a
        :class:`~curator.Reporter`, options for a reporter that is not
        selected or that it does not take (or values it refuses: see
        :func:`~curator.plugin_host.options.build_options`).
    """
    names = [normalize_name(i) for i in reporter_names(spec)]
    # Twice the same reporter writes everything twice (the json events, the summary).
    twice = next((name for position, name in enumerate(names) if name in names[:position]), None)
    if twice is not None:
        raise UsageError(f"reporter {twice!r} is named twice")
    chosen = set(names)
    for name in reporter_options or {}:
        if normalize_name(name) not in chosen:
            raise UsageError(f"options given for reporter {name!r}, which is not selected")
    if spec is None:
        return []
    items = [spec] if isinstance(spec, (str, Reporter)) or not _iterable(spec) else list(spec)
    reporters: list[Reporter] = []
    for item in items:
        if isinstance(item, Reporter):
            reporters.append(item)
        elif isinstance(item, str):
            auto = normalize_name(item) == "auto"
            name = auto_reporter() if auto else item
            if auto and normalize_name(name) in chosen:
                continue  # auto picks a reporter named besides it: once is enough
            cls = registry.reporter(name)
            given = (reporter_options or {}).get(normalize_name(name), {})
            owner = f"reporter {normalize_name(name)!r}"
            settings = build_options(cls.Options, given, owner=owner)
            reporters.append(cls(settings))
        else:
            raise UsageError(f"reporter must be a name or a curator.Reporter, got {item!r}")
    return reporters


def reporter_names(spec: ReporterSpec) -> list[str]:
    """The reporter names in ``spec`` (instances left out): what a checkpoint records."""
    if isinstance(spec, str):
        return [spec]
    if spec is None or isinstance(spec, Reporter) or not _iterable(spec):
        return []
    return [item for item in spec if isinstance(item, str)]


def _iterable(value: object) -> bool:
    try:
        iter(value)  # type: ignore[call-overload]
    except TypeError:
        return False
    return True
