"""Named backends and reporters, collected from every plugin through the registration hooks."""

from __future__ import annotations

import dataclasses
import difflib
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from curator.backends.backend import Backend, normalize_name
from curator.model.errors import PluginError, UnknownNameError, UsageError
from curator.observing.features import ItemFeature, feature_problems
from curator.observing.reporter import Reporter
from curator.plugin_host.contract import backend_problems, reporter_problems
from curator.plugin_host.plugins import BUILTIN_PLUGINS, PluginHost, PluginRecord, PluginSettings

_BUILTIN_NAMES = frozenset(name for name, _ in BUILTIN_PLUGINS)

P = TypeVar("P", Backend, Reporter, ItemFeature)
EntryStatus = Literal["ok", "unavailable", "broken"]


@dataclass(frozen=True)
class Entry(Generic[P]):
    """One named backend or reporter, or a broken plugin that might have provided one.

    Attributes
    ----------
    name
        Canonical name (for a broken plugin: the plugin's name).
    cls
        The registered class; ``None`` for a broken row.
    plugin
        The record of the plugin that provided it.
    status
        ``ok``, ``unavailable`` (a requirement is missing) or ``broken``.
    detail
        Why it is not ``ok``; for an ``ok`` entry, which other plugins offer the name too.
    """

    name: str
    cls: type[P] | None
    plugin: PluginRecord
    status: EntryStatus
    detail: str = ""

    @property
    def description(self) -> str:
        """The class's one-line description."""
        return self.cls.description if self.cls is not None else ""

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape of ``curator backends list --json``."""
        return {
            "name": self.name,
            "provided_by": self.plugin.provided_by,
            "version": self.plugin.version,
            "status": self.status,
            "detail": self.detail,
            "description": self.description,
        }


class Registry:
    """Every backend and reporter that the loaded plugins provide.

    Build one with :meth:`load`; :func:`default_registry` caches one per process.

    Parameters
    ----------
    host
        A plugin host whose plugins are all registered.
    """

    def __init__(self, host: PluginHost) -> None:
        self.host = host
        self.backends: dict[str, Entry[Backend]] = self._collect(
            host.pm.hook.curator_register_backends,
            Backend,  # type: ignore[type-abstract]
            "backend",
            backend_problems,
        )
        self.reporters: dict[str, Entry[Reporter]] = self._collect(
            host.pm.hook.curator_register_reporters, Reporter, "reporter", reporter_problems
        )
        self.features: dict[str, Entry[ItemFeature]] = self._collect(
            host.pm.hook.curator_register_item_features,
            ItemFeature,
            "feature",
            feature_problems,
        )

    @classmethod
    def load(
        cls,
        settings: PluginSettings | None = None,
        *,
        entrypoints: bool = True,
        path: Iterable[str] | None = None,
        plugins: Iterable[tuple[str, object]] = (),
        builtins: bool = True,
    ) -> Registry:
        """Build a registry: built-ins, then ``plugins`` (name, object), then entry points.

        Parameters
        ----------
        settings
            Loading switches; default from the environment.
        entrypoints
            Load the ``curator`` entry-point group.
        path
            Where to look for distributions (default :data:`sys.path`).
        plugins
            Extra plugin objects to register, e.g. in tests.
        builtins
            Register the built-in backends and reporters.
        """
        host = PluginHost(settings, builtins=builtins)
        for name, plugin in plugins:
            host.register(plugin, name)
        if entrypoints:
            host.load_entrypoints(path)
        else:
            host.check_hooks()
        return cls(host)

    def _collect(
        self, hook: Any, base: type[P], kind: str, check: Callable[[Any], list[str]]
    ) -> dict[str, Entry[P]]:
        entries: dict[str, Entry[P]] = {}
        # Registration order: built-ins first, so they keep their names.
        for impl in hook.get_hookimpls():
            record = self.host.plugin_record(impl.plugin_name)
            # The core's own classes pass the contract by test (tests/test_plugins.py),
            # not by a check in every process: 1.3 ms of each run and command.
            trusted = record.distribution is None and impl.plugin_name in _BUILTIN_NAMES
            try:
                provided = list(impl.function())
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # sys.exit() too: the plugin's failure, not ours
                self.host.fail(record, f"{hook.name} raised {type(exc).__name__}: {exc}", exc)
                continue
            if self.host.settings.debug:
                self.host.trace(f"{hook.name} [{impl.plugin_name}] -> {provided!r}")
            for cls in provided:
                if not (isinstance(cls, type) and issubclass(cls, base)) or not isinstance(
                    getattr(cls, "name", None), str
                ):
                    self.host.fail(
                        record,
                        f"{hook.name} returned {cls!r}, "
                        f"expected a {base.__name__} subclass with a name",
                    )
                    continue
                name = normalize_name(cls.name)
                problems = [] if trusted else check(cls)
                if problems:
                    self.host.fail(
                        record, f"{kind} {cls.name!r} ({cls.__qualname__}): " + "; ".join(problems)
                    )
                    continue
                if name in entries:
                    # Built-ins register first, then plugins by distribution name.
                    winner = entries[name]
                    note = f"also offered by {record.describe()}, which is ignored"
                    detail = f"{winner.detail}; {note}" if winner.detail else note
                    entries[name] = dataclasses.replace(winner, detail=detail)
                    self.host.fail(
                        record,
                        f"{kind} name {name!r} is already registered by "
                        f"{winner.plugin.describe()}; ignored the one from {record.describe()}",
                    )
                    continue
                reason = cls.unavailable_reason()
                status: EntryStatus = "unavailable" if reason else "ok"
                entries[name] = Entry(name, cls, record, status, reason or "")
                record.provides.append(f"{kind}:{name}")
        return entries

    def broken_plugins(self) -> list[PluginRecord]:
        """Plugins that failed to load or register."""
        return [r for r in self.host.records.values() if r.status == "broken"]

    def listing(self, kind: Literal["backend", "reporter"]) -> list[Entry[Any]]:
        """Rows for ``curator backends list``: every entry, then broken plugins."""
        entries: dict[str, Entry[Any]] = dict(
            self.backends if kind == "backend" else self.reporters
        )
        rows = sorted(entries.values(), key=lambda e: (e.plugin.distribution is not None, e.name))
        for record in self.broken_plugins():
            if not record.provides:
                rows.append(Entry(record.name, None, record, "broken", record.error))
        return rows

    def backend(self, name: str) -> type[Backend]:
        """Look up a usable backend class by name (``_`` and ``-`` are interchangeable).

        Raises
        ------
        UnknownNameError
            No plugin provides it; the message lists the available names and the closest one.
        UsageError
            It is registered but unavailable here (a requirement is missing).
        PluginError
            The plugin that would provide it is broken.
        """
        return self._get(self.backends, name, "backend")

    def reporter(self, name: str) -> type[Reporter]:
        """Look up a usable reporter class by name; raises like :meth:`backend`."""
        return self._get(self.reporters, name, "reporter")

    def _get(self, entries: dict[str, Entry[P]], name: str, kind: str) -> type[P]:
        wanted = normalize_name(name)
        entry = entries.get(wanted)
        if entry is not None and entry.cls is not None:
            if entry.status != "ok":
                raise UsageError(f"{kind} {wanted!r} is unavailable: {entry.detail}")
            return entry.cls
        for record in self.broken_plugins():
            if normalize_name(record.name) == wanted:
                raise PluginError(
                    f"{kind} {wanted!r} would come from {record.describe()}, "
                    f"which is broken: {record.error}"
                )
        available = sorted(n for n, e in entries.items() if e.status == "ok")
        plugins_off = self.host.settings.no_plugins
        for record in self.host.records.values():
            if (
                not plugins_off
                and record.status == "disabled"
                and normalize_name(record.name) == wanted
            ):
                raise UnknownNameError(
                    f"{kind} {wanted!r} would come from {record.describe()}, which is "
                    "disabled (CURATOR_DISABLE_PLUGINS)"
                )
        known = KNOWN_PLUGINS.get(kind, {}).get(wanted)
        if known is not None:
            if plugins_off:
                message = (
                    f"{kind} {wanted!r} comes from the plugin {known}, and plugins are off "
                    "(--no-plugins or CURATOR_NO_PLUGINS=1)"
                )
            else:
                message = (
                    f"{kind} {wanted!r} is not installed: it comes with the plugin {known} "
                    f"(pip install {known})"
                )
        else:
            message = f"unknown {kind} {name!r}"
            if plugins_off:
                message += " (plugins are off: --no-plugins or CURATOR_NO_PLUGINS=1)"
            candidates = [*entries, *KNOWN_PLUGINS.get(kind, {})]
            close = difflib.get_close_matches(wanted, candidates, n=1, cutoff=0.5)
            if close:
                message += f"; did you mean {close[0]!r}?"
        message += f"\navailable {kind}s: {', '.join(available) or '(none)'}"
        raise UnknownNameError(message)


KNOWN_PLUGINS = {
    "backend": {
        "process-pool": "curator-backend-process-pool",
        "dask": "curator-backend-dask",
    }
}
"""Names provided by curator's own plugin distributions, for an install hint when missing."""

_default: Registry | None = None
_default_lock = threading.Lock()


def default_registry() -> Registry:
    """The process-wide registry, built on first use from the environment's plugins."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Registry.load()
        return _default


def set_default_registry(registry: Registry | None) -> None:
    """Replace (or with ``None``, forget) the process-wide registry."""
    global _default
    with _default_lock:
        _default = registry
