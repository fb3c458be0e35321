"""The plugin host: a pluggy manager, built-in plugins and tolerant entry-point loading.

Third-party plugins are found through the ``curator`` entry-point group. Each
is loaded and registered inside its own ``try``: a plugin that fails to
import, raises while registering, or has hooks pluggy rejects is recorded as
*broken* (with its distribution, version and error) and everything else keeps
working. Environment switches:

``CURATOR_STRICT_PLUGINS=1``
    Make any plugin failure fatal (raise :class:`~curator.model.errors.PluginError`).
``CURATOR_DISABLE_PLUGINS=a,b``
    Skip these plugins (entry-point or distribution names).
``CURATOR_NO_PLUGINS=1``
    Skip every third-party plugin; built-ins still load.
``CURATOR_DEBUG_PLUGINS=1``
    Trace hook calls to stderr and keep full tracebacks of broken plugins.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import pluggy

from curator._version import __version__
from curator.model.errors import PluginError
from curator.plugin_host import hookspecs
from curator.plugin_host.class_ref import import_object
from curator.plugin_host.compat import CORE_DISTRIBUTION, core_requirement, satisfies
from curator.plugin_host.entrypoints import EntryPoint, canonical, entry_points
from curator.plugin_host.relay import EventRelay

ENTRY_POINT_GROUP = "curator"
"""The entry-point group third-party plugins register under."""

BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("builtin-backends", "curator.backends.builtin"),
    ("builtin-reporters", "curator.observing.reporters"),
    ("builtin-capture", "curator.observing.builtin:capture"),
    ("builtin-metrics", "curator.observing.builtin:metrics"),
    ("builtin-checkpoint", "curator.checkpoint.plugin:checkpoint"),
    ("builtin-bench", "curator.running.bench_plugin:bench"),
)
"""Plugin name and ``module[:attribute]`` of each built-in plugin, registered through the same
hooks. Those in :data:`SWITCHABLE` are left out when disabled by name
(``CURATOR_DISABLE_PLUGINS``); ``--no-plugins`` (third-party ones) keeps them."""
SWITCHABLE = frozenset(
    {"builtin-capture", "builtin-metrics", "builtin-checkpoint", "builtin-bench"}
)
"""Their names start with ``builtin-``, as the other built-ins': a third-party plugin named
``metrics`` neither clashes with one nor switches it off."""

PluginStatus = Literal["loaded", "broken", "disabled"]

log = logging.getLogger("curator")


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class PluginSettings:
    """How plugins are loaded; :meth:`from_env` reads the ``CURATOR_*`` switches."""

    strict: bool = False
    no_plugins: bool = False
    disabled: frozenset[str] = frozenset()
    debug: bool = False

    def __post_init__(self) -> None:
        names = frozenset(canonical(n.strip()) for n in self.disabled if n.strip())
        object.__setattr__(self, "disabled", names)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PluginSettings:
        """Read the settings from ``env`` (default: :data:`os.environ`)."""
        env = os.environ if env is None else env
        disabled = env.get("CURATOR_DISABLE_PLUGINS", "")
        return cls(
            strict=_flag(env, "CURATOR_STRICT_PLUGINS"),
            no_plugins=_flag(env, "CURATOR_NO_PLUGINS"),
            disabled=frozenset(disabled.split(",")),
            debug=_flag(env, "CURATOR_DEBUG_PLUGINS"),
        )

    def is_disabled(self, name: str, distribution: str) -> bool:
        """Whether a plugin is switched off by name or by distribution."""
        return self.no_plugins or bool({canonical(name), canonical(distribution)} & self.disabled)


@dataclass
class PluginRecord:
    """One plugin as curator saw it: where it came from and how loading went.

    Attributes
    ----------
    name
        The entry-point name (or the built-in plugin's name).
    distribution, version
        The installed distribution providing it; ``None`` for built-ins.
    status
        ``loaded``, ``broken`` or ``disabled``.
    error
        Why it is broken (one line per problem).
    provides
        What it registered, as ``"backend:NAME"`` / ``"reporter:NAME"``.
    """

    name: str
    distribution: str | None
    version: str | None
    status: PluginStatus = "loaded"
    error: str = ""
    provides: list[str] = field(default_factory=list)
    traceback: str = ""
    module: str = ""
    """The module the entry point names (empty for built-ins and objects)."""

    @property
    def provided_by(self) -> str:
        """``"builtin"`` or the distribution name."""
        return self.distribution or "builtin"

    def describe(self) -> str:
        """``'name' (dist 1.2)`` for messages."""
        origin = "builtin" if self.distribution is None else f"{self.distribution} {self.version}"
        return f"plugin {self.name!r} ({origin})"

    def to_json(self) -> dict[str, Any]:
        """The stable JSON shape used by ``curator plugins list --json``."""
        return {
            "name": self.name,
            "provided_by": self.provided_by,
            "version": self.version,
            "status": self.status,
            "detail": self.error,
            "provides": list(self.provides),
        }


class _Manager(pluggy.PluginManager):
    """pluggy's manager, not looking for hooks among an object's dunder names.

    pluggy reads each attribute a plugin lists (``dir()``) to find its hooks;
    the 25-odd dunders of an object are never hooks, and skipping them takes
    two thirds off registering, which a run does twice (its registry, its
    event relay).
    """

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        if name.startswith("__"):
            return None
        if isinstance(plugin, types.ModuleType):
            # A module plugin's names are mostly its imports: what cannot be called (a
            # module, a constant) is never a hook, and its __dict__ says so without
            # pluggy's static lookup. Whatever can be called is left to pluggy to judge.
            value = vars(plugin).get(name)
            if not (callable(value) or isinstance(value, classmethod)):
                return None
        return super().parse_hookimpl_opts(plugin, name)


def new_manager() -> pluggy.PluginManager:
    """A pluggy manager with curator's hookspecs."""
    manager = _Manager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    return manager


class PluginHost:
    """A pluggy manager with curator's hookspecs and a record of every plugin.

    Parameters
    ----------
    settings
        Loading switches; default from the environment.
    builtins
        Register the built-in backends and reporters (tests may turn this off).
    """

    def __init__(self, settings: PluginSettings | None = None, *, builtins: bool = True) -> None:
        self.settings = settings if settings is not None else PluginSettings.from_env()
        self.pm = new_manager()
        self.records: dict[str, PluginRecord] = {}
        if self.settings.debug:
            self.pm.trace.root.setwriter(sys.stderr.write)
            self.pm.enable_tracing()
        if builtins:
            for name, where in BUILTIN_PLUGINS:
                if name in SWITCHABLE and canonical(name) in self.settings.disabled:
                    self.records[name] = PluginRecord(name, None, __version__, status="disabled")
                    continue
                module_name, _, attribute = where.partition(":")
                self.register(import_object(module_name, attribute), name, version=__version__)

    def switched_off(self, name: str) -> bool:
        """Whether the built-in plugin ``name`` (see :data:`SWITCHABLE`) is disabled here."""
        record = self.records.get(name)
        return record is not None and record.distribution is None and record.status == "disabled"

    def register(
        self,
        plugin: object,
        name: str,
        *,
        distribution: str | None = None,
        version: str | None = None,
    ) -> PluginRecord:
        """Register ``plugin`` under ``name``; a rejected plugin is recorded as broken."""
        record = PluginRecord(name, distribution, version)
        if name in self.records:
            other = self.records[name]
            self.records[f"{name} ({distribution})"] = record
            self.fail(record, f"plugin name {name!r} is already taken by {other.describe()}")
            return record
        self.records[name] = record
        try:
            self.pm.register(plugin, name=name)
        except (pluggy.PluginValidationError, ValueError) as exc:
            if self.pm.has_plugin(name):
                self.pm.unregister(name=name)
            self.fail(record, f"invalid hooks: {exc}", exc)
        return record

    def load_entrypoints(self, path: Iterable[str] | None = None) -> None:
        """Load every plugin of the ``curator`` entry-point group.

        Parameters
        ----------
        path
            Where to look for distributions (default: :data:`sys.path`). The
            plugin modules themselves are imported normally.
        """
        for ep in entry_points(ENTRY_POINT_GROUP, path):
            self._load_one(ep)
        self.check_hooks()

    def _load_one(self, ep: EntryPoint) -> None:
        dist, version = ep.distribution, ep.version
        if self.settings.is_disabled(ep.name, dist):
            self.records.setdefault(
                ep.name, PluginRecord(ep.name, dist, version, status="disabled")
            )
            return
        wanted = core_requirement(ep.requires)
        if wanted and not satisfies(__version__, wanted):
            self._unloaded(
                ep.name,
                dist,
                version,
                f"built for {CORE_DISTRIBUTION}{wanted}, but {CORE_DISTRIBUTION} {__version__} "
                "is installed; not imported (install a version of the plugin made for this core)",
            )
            return
        try:
            plugin = ep.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            # sys.exit() or any BaseException at import marks the plugin broken; the
            # command goes on (only Ctrl-C stops it).
            message = f"failed to import {ep.value!r}: {type(exc).__name__}: {exc}"
            self._unloaded(ep.name, dist, version, message, exc)
            return
        record = self.register(plugin, ep.name, distribution=dist, version=version)
        record.module = ep.value.split(":", 1)[0]

    def _unloaded(
        self, name: str, dist: str, version: str, message: str, exc: BaseException | None = None
    ) -> None:
        """Record a plugin that was never registered as broken."""
        record = PluginRecord(name, dist, version)
        self.records.setdefault(name, record)
        self.fail(record, message, exc)

    def check_hooks(self) -> None:
        """Mark plugins that implement hooks curator does not define as broken."""
        while True:
            try:
                self.pm.check_pending()
            except pluggy.PluginValidationError as exc:
                name = self.pm.get_name(exc.plugin)
                self.pm.unregister(plugin=exc.plugin)
                record = self.records.get(name or "")
                if record is None:  # pragma: no cover - registered behind our back
                    raise
                self.fail(record, str(exc), exc)
            else:
                return

    def fail(self, record: PluginRecord, message: str, exc: BaseException | None = None) -> None:
        """Record a plugin problem; raise instead in strict mode."""
        record.status = "broken"
        record.error = f"{record.error}; {message}" if record.error else message
        if exc is not None:
            record.traceback = "".join(traceback.format_exception(exc))
        if self.settings.strict:
            raise PluginError(f"{record.describe()}: {message}") from exc
        hint = (
            f"; disable it with CURATOR_DISABLE_PLUGINS={record.name}"
            if record.distribution
            else ""
        )
        log.warning("%s is broken: %s%s", record.describe(), message, hint)
        if self.settings.debug and record.traceback:
            log.warning("%s", record.traceback)

    def plugin_record(self, plugin_name: str) -> PluginRecord:
        """The record of a registered plugin."""
        return self.records[plugin_name]

    def event_relay(self, reporters: Iterable[object]) -> EventRelay:
        """The event hooks of one run: every loaded plugin plus this run's reporters.

        Reporters are registered here rather than in the shared manager, so two
        runs in one process (say, in two threads) never see each other's events.
        """
        manager = new_manager()
        for name, plugin in self.pm.list_name_plugin():
            if plugin is not None:
                manager.register(plugin, name=name)
        named: dict[str, str] = {}
        for position, reporter in enumerate(reporters):
            key = f"reporter:{position}"
            manager.register(reporter, name=key)
            named[key] = f"reporter {getattr(reporter, 'name', type(reporter).__name__)!r}"

        def describe(plugin_name: str) -> str:
            if plugin_name in named:
                return named[plugin_name]
            record = self.records.get(plugin_name)
            return record.describe() if record is not None else repr(plugin_name)

        trace = self.trace if self.settings.debug else None
        return EventRelay(manager, describe, trace=trace, strict=self.settings.strict)

    def trace(self, message: str) -> None:
        """Write ``message`` to stderr when hook calls are traced (``CURATOR_DEBUG_PLUGINS``)."""
        if self.settings.debug:
            sys.stderr.write(f"curator-plugins: {message}\n")
