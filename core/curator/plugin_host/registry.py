"""Named backends and reporters, collected from every plugin through the registration hooks."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from curator.backends.backend import Backend, normalize_name
from curator.model.errors import PluginError, UnknownNameError, UsageError
from curator.observing.features import ItemFeature, feature_problems
from curator.observing.reporter import Reporter
from curator.plugin_host.class_ref import ClassRef
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
    target
        Where a class registered as a :class:`~curator.plugin_host.class_ref.ClassRef`
        comes from; while ``cls`` is ``None`` and this is set, it is not imported yet.
    """

    name: str
    cls: type[P] | None
    plugin: PluginRecord
    status: EntryStatus
    detail: str = ""
    target: str | None = None

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


@dataclass(frozen=True)
class _Kind(Generic[P]):
    """What a registration hook provides: the base class, and the check of a plugin's class."""

    name: str
    base: type[P]
    check: Callable[[Any], list[str]]


_BACKEND: _Kind[Backend] = _Kind("backend", Backend, backend_problems)  # type: ignore[type-abstract]
_REPORTER: _Kind[Reporter] = _Kind("reporter", Reporter, reporter_problems)
_FEATURE: _Kind[ItemFeature] = _Kind("feature", ItemFeature, feature_problems)


class Registry:
    """Every backend and reporter that the loaded plugins provide.

    Build one with :meth:`load`; :func:`default_registry` caches one per process.
    A class a plugin registers as a :class:`~curator.plugin_host.class_ref.ClassRef`
    is imported when first needed: :meth:`backend` and :meth:`reporter` import
    the one asked for, :attr:`backends`, :attr:`reporters` and :attr:`features`
    every one.

    Parameters
    ----------
    host
        A plugin host whose plugins are all registered.
    """

    def __init__(self, host: PluginHost) -> None:
        self.host = host
        self._settling = threading.RLock()  # two runs' threads may look up one name at once
        self._understudies: dict[str, list[Entry[Any]]] = {}
        """By ``kind:name``: the entries registration ignored for a name already taken."""
        self._refused: dict[str, str] = {}
        """By ``kind:name``: why a reference's class was refused when it was imported."""
        hook = host.pm.hook
        self._backends = self._collect(hook.curator_register_backends, _BACKEND)
        self._reporters = self._collect(hook.curator_register_reporters, _REPORTER)
        self._features = self._collect(hook.curator_register_item_features, _FEATURE)

    @property
    def backends(self) -> dict[str, Entry[Backend]]:
        """Every backend, by name, each class imported."""
        return self._settle_all(self._backends, _BACKEND)

    @property
    def reporters(self) -> dict[str, Entry[Reporter]]:
        """Every reporter, by name, each class imported."""
        return self._settle_all(self._reporters, _REPORTER)

    @property
    def features(self) -> dict[str, Entry[ItemFeature]]:
        """Every per-item feature, by name, each class imported."""
        return self._settle_all(self._features, _FEATURE)

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

    def _collect(self, hook: Any, kind: _Kind[P]) -> dict[str, Entry[P]]:
        entries: dict[str, Entry[P]] = {}
        # Registration order: built-ins first, so they keep their names.
        for impl in hook.get_hookimpls():
            record = self.host.plugin_record(impl.plugin_name)
            try:
                provided = list(impl.function())
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # sys.exit() too: the plugin's failure, not ours
                self.host.fail(record, f"{hook.name} raised {type(exc).__name__}: {exc}", exc)
                continue
            if self.host.settings.debug:
                self.host.trace(f"{hook.name} [{impl.plugin_name}] -> {provided!r}")
            for item in provided:
                if isinstance(item, ClassRef) and isinstance(item.name, str):
                    entry = Entry[P](
                        normalize_name(item.name), None, record, "ok", target=item.target
                    )
                else:
                    problem = self._problem(item, record, kind, f"{hook.name} returned")
                    if problem is not None:
                        self.host.fail(record, problem)
                        continue
                    entry = self._entry(item, record)
                name = entry.name
                if name in entries:
                    # Built-ins register first, then plugins by distribution name. The one
                    # ignored stands in if the winner, a reference, fails to import.
                    self._understudies.setdefault(f"{kind.name}:{name}", []).append(entry)
                    winner = entries[name]
                    note = f"also offered by {record.describe()}, which is ignored"
                    detail = f"{winner.detail}; {note}" if winner.detail else note
                    entries[name] = dataclasses.replace(winner, detail=detail)
                    self.host.fail(
                        record,
                        f"{kind.name} name {name!r} is already registered by "
                        f"{winner.plugin.describe()}; ignored the one from {record.describe()}",
                    )
                    continue
                entries[name] = entry
                record.provides.append(f"{kind.name}:{name}")
        return entries

    def _problem(self, cls: Any, record: PluginRecord, kind: _Kind[P], source: str) -> str | None:
        """Why ``cls`` cannot be registered for ``kind``, or ``None`` if it can."""
        if not (isinstance(cls, type) and issubclass(cls, kind.base)) or not isinstance(
            getattr(cls, "name", None), str
        ):
            return f"{source} {cls!r}, expected a {kind.base.__name__} subclass with a name"
        # The core's own classes pass the contract by test (tests/test_plugins.py),
        # not by a check in every process: 1.3 ms of each run and command.
        trusted = record.distribution is None and record.name in _BUILTIN_NAMES
        problems = [] if trusted else kind.check(cls)
        if problems:
            return f"{kind.name} {cls.name!r} ({cls.__qualname__}): " + "; ".join(problems)
        return None

    def _entry(self, cls: type[P], record: PluginRecord) -> Entry[P]:
        reason = cls.unavailable_reason()
        status: EntryStatus = "unavailable" if reason else "ok"
        return Entry(normalize_name(cls.name), cls, record, status, reason or "")

    def _settle(self, entries: dict[str, Entry[P]], name: str, kind: _Kind[P]) -> Entry[P] | None:
        """Import the class of ``name``'s entry if it is a reference; ``None`` if that fails.

        A class that cannot be imported, is not the one the reference names, or
        fails its checks leaves the registry (a plugin's class of the same name
        that registration ignored takes its place), its plugin is marked broken,
        and a lookup of the name is refused with the reason from then on.
        """
        with self._settling:
            entry = entries.get(name)
            if entry is None or entry.cls is not None or entry.target is None:
                return entry
            return self._import(entries, entry, kind)

    def _import(
        self, entries: dict[str, Entry[P]], entry: Entry[P], kind: _Kind[P]
    ) -> Entry[P] | None:
        name, record, key = entry.name, entry.plugin, f"{kind.name}:{entry.name}"
        assert entry.target is not None
        source = f"{kind.name} {name!r} refers to {entry.target!r}, which"
        error: BaseException | None = None
        problem: str | None
        try:
            cls: Any = ClassRef(name, entry.target).load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # an import's sys.exit() too
            error, problem = exc, f"{source} cannot be imported: {type(exc).__name__}: {exc}"
        else:
            problem = self._problem(cls, record, kind, f"{source} is")
            if problem is None and normalize_name(cls.name) != name:
                problem = f"{source} is named {normalize_name(cls.name)!r}"
        if problem is None:
            made = self._entry(cls, record)
            detail = "; ".join(d for d in (made.detail, entry.detail) if d)  # why, and twins
            entries[name] = made = dataclasses.replace(made, detail=detail, target=entry.target)
            return made
        # The registry is whole again before the plugin's failure is told (which
        # raises in strict mode): the next lookup does not import it again.
        del entries[name]
        record.provides.remove(key)
        understudies = self._understudies.pop(key, [])
        if understudies:
            entries[name], *rest = understudies
            entries[name].plugin.provides.append(key)
            if rest:
                self._understudies[key] = rest
        else:
            self._refused[key] = (
                f"{kind.name} {name!r} comes from {record.describe()}, which is broken: {problem}"
            )
        self.host.fail(record, problem, error)
        return self._settle(entries, name, kind) if understudies else None

    def _settle_all(self, entries: dict[str, Entry[P]], kind: _Kind[P]) -> dict[str, Entry[P]]:
        for name in [n for n, e in entries.items() if e.cls is None]:
            self._settle(entries, name, kind)
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
        return self._get(self._backends, name, _BACKEND)

    def installed_plugin_of(self, backend: str) -> PluginRecord | None:
        """The installed plugin that provides ``backend``; ``None`` for a built-in (or unknown).

        Whom a backend that broke the run contract is blamed on: a built-in's is curator's bug.
        """
        entry = self._settle(self._backends, normalize_name(backend), _BACKEND)  # that one only
        record = entry.plugin if entry is not None else None
        return record if record is not None and record.distribution is not None else None

    def reporter(self, name: str) -> type[Reporter]:
        """Look up a usable reporter class by name; raises like :meth:`backend`."""
        return self._get(self._reporters, name, _REPORTER)

    def _get(self, entries: dict[str, Entry[P]], name: str, of: _Kind[P]) -> type[P]:
        kind: str = of.name
        wanted = normalize_name(name)
        entry = self._settle(entries, wanted, of)
        if entry is not None:
            assert entry.cls is not None
            if entry.status != "ok":
                raise UsageError(f"{kind} {wanted!r} is unavailable: {entry.detail}")
            return entry.cls
        refused = self._refused.get(f"{kind}:{wanted}")
        if refused is not None:
            raise PluginError(refused)
        for record in self.broken_plugins():
            if normalize_name(record.name) == wanted:
                raise PluginError(
                    f"{kind} {wanted!r} would come from {record.describe()}, "
                    f"which is broken: {record.error}"
                )
        # Each class imported (an error's cost, not a run's): a broken one is not offered.
        available = sorted(n for n, e in self._settle_all(entries, of).items() if e.status == "ok")
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
            import difflib  # for the error message only: off the path of every run

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
