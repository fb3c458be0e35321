"""A plugin's class named by its import path, imported only when a run or a listing needs it."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


def import_object(module: str, attribute: str = "") -> Any:
    """Import ``module`` and return its (dotted) ``attribute``, or the module without one.

    How entry points, the built-in plugins and :class:`ClassRef` name what they load.
    """
    found: Any = importlib.import_module(module)
    for part in filter(None, attribute.split(".")):
        found = getattr(found, part)
    return found


@dataclass(frozen=True)
class ClassRef:
    """A backend, reporter or per-item feature class, registered without importing it.

    A registration hook (``curator_register_backends`` and the others) may
    return these instead of classes. The registry then knows the name from the
    reference alone and imports ``target`` the first time the class is needed:
    :func:`curator.run` and ``curator run`` import the backend they run and none
    of the others (the command line imports every class only for a line that
    needs their flags: one that gives a plugin's flag, asks for help or has an
    error), and a plugin's hook module stays a few lines that import nothing::

        @hookimpl
        def curator_register_backends():
            return [ClassRef("my-cluster", "my_plugin.backend:MyClusterBackend")]

    The class is checked when it is imported, as a class returned directly is
    at registration: if the import fails, or the class's ``name`` is not this
    name, or it breaks the contract, the plugin is listed ``broken`` with the
    reason, and a run that asks for the name is refused with it.

    Parameters
    ----------
    name
        The name the class registers under (the class's own ``name``).
    target
        ``"package.module:ClassName"``.
    """

    name: str
    target: str

    def load(self) -> object:
        """Import ``target``'s module and return the object it names."""
        module_name, colon, attribute = self.target.partition(":")
        if not (module_name and colon and all(attribute.split("."))):
            raise ValueError(f"{self.target!r} is not 'package.module:ClassName'")
        return import_object(module_name, attribute)


def loaded_on_access(module: str, refs: Mapping[str, ClassRef]) -> Callable[[str], Any]:
    """A module's ``__getattr__`` that gives ``refs``' classes by name, importing each when asked.

    What lets a module export classes (built-in backends, reporters) that a run
    imports only when it uses them: ``__getattr__ = loaded_on_access(__name__, refs)``.
    """

    def __getattr__(name: str) -> Any:
        ref = refs.get(name)
        if ref is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        return ref.load()

    return __getattr__
