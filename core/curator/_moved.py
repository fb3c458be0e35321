"""The modules' names before the sub-packages, still importable: ``curator.dispatch`` and so on.

Until release 0.2 the core was one flat folder of modules; it is now split
into sub-packages by concern (``docs/architecture.md``). Code written against
the old names (``from curator.dispatch import units`` in a backend plugin)
and pickles that name them (a stage's state in an older checkpoint) keep
working: importing an old name gives the module at its new home, the very
same module object, so its classes and functions are the same too.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Sequence
from typing import TYPE_CHECKING

MOVED = {
    "backend": "backends.backend",
    "capture": "observing.capture",
    "catalog": "checkpoint.catalog",
    "checkpoint_file": "checkpoint.file",
    "checkpoint_meta": "checkpoint.meta",
    "checkpoint_schema": "checkpoint.schema",
    "checkpointing": "checkpoint.plugin",
    "choosing": "running.choosing",
    "columns": "model.columns",
    "compat": "plugin_host.compat",
    "contract": "plugin_host.contract",
    "dispatch": "backends.dispatch",
    "ending": "running.ending",
    "errors": "model.errors",
    "features": "observing.features",
    "fingerprint": "checkpoint.fingerprint",
    "fitting": "running.fitting",
    "groups": "running.groups",
    "hookspecs": "plugin_host.hookspecs",
    "intake": "running.intake",
    "interrupts": "running.interrupts",
    "journal": "checkpoint.journal",
    "keyfile": "checkpoint.keyfile",
    "latest": "checkpoint.latest",
    "ledger": "running.ledger",
    "lifecycle": "backends.lifecycle",
    "loop": "running.loop",
    "metrics": "observing.metrics",
    "options": "plugin_host.options",
    "outcome": "model.outcome",
    "parameters": "checkpoint.parameters",
    "pickling": "model.pickling",
    "pipeline": "model.pipeline",
    "plugins": "plugin_host.plugins",
    "policy": "running.policy",
    "printable": "model.printable",
    "progress": "observing.progress",
    "recorded": "checkpoint.recorded",
    "registry": "plugin_host.registry",
    "relay": "plugin_host.relay",
    "reporter": "observing.reporter",
    "reporters": "observing.reporters",
    "requirements": "plugin_host.requirements",
    "result": "model.result",
    "resuming": "checkpoint.resuming",
    "runlock": "checkpoint.runlock",
    "runner": "running.runner",
    "selection": "model.selection",
    "session": "running.session",
    "settings": "checkpoint.settings",
    "shards": "model.shards",
    "shipping": "backends.shipping",
    "skipping": "checkpoint.skipping",
    "spawning": "backends.spawning",
    "state": "model.state",
    "store": "checkpoint.store",
    "stored_states": "checkpoint.stored_states",
    "streaming": "running.streaming",
    "table": "model.table",
    "watchdog": "backends.watchdog",
    "work": "backends.work",
}
"""Old module name (after ``curator.``) -> new home (after ``curator.``)."""


def new_name(fullname: str) -> str | None:
    """The new name of the module that had ``fullname``, or ``None`` if it did not move."""
    if not fullname.startswith("curator."):
        return None
    top, dot, rest = fullname[len("curator.") :].partition(".")
    home = MOVED.get(top)
    return None if home is None else f"curator.{home}{dot}{rest}"


if TYPE_CHECKING:
    from importlib.abc import Loader, MetaPathFinder

    class _Base(MetaPathFinder, Loader):
        pass
else:
    # The import system needs only the methods; importing importlib.abc would cost
    # every process that imports curator (each worker too) about 13 ms.
    _Base = object


class OldNames(_Base):
    """Finds a moved module under its old name and gives the module at its new home."""

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None = None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        """A spec for an old name (``None`` for every other name)."""
        new = new_name(fullname)
        if new is None or importlib.util.find_spec(new) is None:
            return None
        return importlib.machinery.ModuleSpec(fullname, self, loader_state=new)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        """The module at its new home (imported, if it was not yet)."""
        module = importlib.import_module(spec.loader_state)
        spec.loader_state = (module, module.__spec__)
        return module

    def get_code(self, fullname: str) -> types.CodeType | None:
        """The new home's code (for ``python -m`` with an old name)."""
        new = new_name(fullname)
        spec = None if new is None else importlib.util.find_spec(new)
        loader = None if spec is None else spec.loader
        get_code = getattr(loader, "get_code", None)
        return get_code(new) if callable(get_code) else None

    def exec_module(self, module: types.ModuleType) -> None:
        """Nothing to run; the import machinery set the old name's spec, the real one goes back."""
        if module.__spec__ is not None:
            _real, module.__spec__ = module.__spec__.loader_state


def install() -> None:
    """Put the finder first on :data:`sys.meta_path` (once per process)."""
    if not any(isinstance(finder, OldNames) for finder in sys.meta_path):
        sys.meta_path.insert(0, OldNames())
