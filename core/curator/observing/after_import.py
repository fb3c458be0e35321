"""Call back once a module is imported, without importing it: a post-import hook.

A worker process starts from a fork server that imports curator's worker side
once; every millisecond of that import is on the path of each run's start.
Catching an item's logging records needs :mod:`logging` (with
:mod:`traceback`, :mod:`string` and more: about 8 ms), yet an item can log
only once something imported :mod:`logging`. So capture sets up its catcher
right after that import (:func:`when_imported`), before the importer's next
line can add a handler or log a record: what the catcher sees is the same as
when it is set up at the run's start.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable
from typing import Any

_lock = threading.Lock()


class _Watch:
    """On :data:`sys.meta_path` until ``name`` is imported, then its loader calls back."""

    def __init__(self, name: str, callback: Callable[[], None]) -> None:
        self.name = name
        self.callback: Callable[[], None] | None = callback

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname != self.name or self.callback is None:
            return None
        spec = None
        for finder in list(sys.meta_path):  # the finders after this one find the module
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None:
                break
        if spec is None or spec.loader is None:
            return spec
        # The watch stays until the module has run: a find_spec() that imports nothing
        # (a library asking whether logging exists) must not use it up.
        spec.loader = _ThenCall(spec.loader, self.fire)
        return spec

    def fire(self) -> None:
        """The module ran: stop watching, and call back (once, whichever loader calls)."""
        self.cancel()
        with _lock:
            callback, self.callback = self.callback, None
        if callback is not None:
            callback()

    def cancel(self) -> None:
        """Stop watching (the callback is not called)."""
        with _lock:
            if self in sys.meta_path:
                # A new list, not one changed in place: an import running in another
                # thread walks the list it took, and would skip the finder after this one.
                sys.meta_path = [finder for finder in sys.meta_path if finder is not self]


class _ThenCall:
    """A loader that runs the real one, then calls back.

    The callback is the watch's :meth:`_Watch.fire`, which calls only once: a
    reload calls nothing.
    """

    def __init__(self, loader: Any, callback: Callable[[], None]) -> None:
        self.loader = loader
        self.callback = callback

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        try:
            self.callback()
        except Exception as exc:  # the importer's own import must not fail for it
            with contextlib.suppress(Exception):  # (not a warning: -W error would raise)
                sys.stderr.write(f"curator: after importing {module.__name__}: {exc!r}\n")

    def __getattr__(self, name: str) -> Any:  # get_source, is_package, ...: the real loader's
        loader = self.__dict__.get("loader")  # absent in a copy being made: no recursion
        if loader is None:
            raise AttributeError(name)
        return getattr(loader, name)


def when_imported(name: str, callback: Callable[[], None]) -> Callable[[], None]:
    """Call ``callback`` now if ``name`` is imported, else right after its import.

    Returns
    -------
    Callable
        Cancels the call if it has not happened yet.
    """
    if name in sys.modules:
        callback()
        return lambda: None
    watch = _Watch(name, callback)
    with _lock:
        sys.meta_path = [watch, *sys.meta_path]  # a new list, as in cancel()
    if name in sys.modules:  # imported by another thread meanwhile, past the watch
        watch.fire()

    def cancel() -> None:
        watch.cancel()
        watch.callback = None

    return cancel
