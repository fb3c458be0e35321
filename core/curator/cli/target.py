"""Loading the ``TARGET`` of ``curator run``: ``package.module:attr`` or ``path/file.py:attr``."""

from __future__ import annotations

import difflib
import importlib
import inspect
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from curator.backends.shipping import ship_by_value
from curator.model.errors import UsageError
from curator.model.pipeline import Pipeline, check_runnable

FORMS = "package.module:attr or path/to/file.py:attr"


def load_target(spec: str) -> Pipeline[Any]:
    """Import ``spec`` and return the pipeline it names.

    The attribute may be a :class:`~curator.Pipeline` or a callable that takes
    no arguments and returns one.

    Raises
    ------
    UsageError
        When the module cannot be found or fails to import (with its
        traceback), the attribute does not exist, or it is not a pipeline.
    """
    where, sep, attr = spec.rpartition(":")
    if not sep or not where or not attr:
        raise UsageError(f"invalid target {spec!r}: expected {FORMS}")
    if where.endswith(".py") or "/" in where or os.sep in where:
        module = _import_file(Path(where), spec)
    else:
        # Like `python -m`, let the current directory provide the module.
        if os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())
        module = _import(where, spec)
        _check_not_shadowed(module, where, spec)
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            names = [n for n in dir(obj) if not n.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UsageError(f"invalid target {spec!r}: {where} has no attribute {part!r}{hint}")
        obj = getattr(obj, part)
    if callable(obj) and not isinstance(obj, Pipeline):
        obj = _call(obj, attr, spec)
    try:
        return check_runnable(obj)
    except UsageError as exc:
        raise UsageError(f"invalid target {spec!r}: {exc}") from None


def _call(factory: Any, attr: str, spec: str) -> Any:
    try:
        inspect.signature(factory).bind()
    except TypeError as exc:
        raise UsageError(
            f"invalid target {spec!r}: {attr} needs arguments ({exc}); the target must be a "
            "Pipeline or a callable that takes no arguments and returns one"
        ) from None
    except ValueError:  # no signature to inspect (some builtins): just call it
        pass
    try:
        return factory()
    except SystemExit as exc:
        raise UsageError(
            f"invalid target {spec!r}: calling {attr}() called sys.exit({exc.code!r})"
        ) from None
    except Exception as exc:
        trace = _users_trace(exc)
        raise UsageError(f"invalid target {spec!r}: calling {attr}() failed:\n{trace}") from None


def _import_file(path: Path, spec: str) -> Any:
    if not path.is_file():
        raise UsageError(f"invalid target {spec!r}: no file {str(path)!r}")
    path = path.resolve()
    # Import by name from the file's folder, so worker processes can import it too.
    name = path.stem
    folder = str(path.parent)
    if folder not in sys.path:
        sys.path.insert(0, folder)
    module = _import(name, spec)
    if Path(getattr(module, "__file__", "") or "").resolve() != path:
        raise UsageError(
            f"invalid target {spec!r}: the module name {name!r} is already taken by "
            f"{getattr(module, '__file__', None) or 'a built-in module'}; rename the file"
        )
    # Workers elsewhere (a cluster) lack the file's folder: what it defines travels whole.
    ship_by_value(module)
    return module


def _check_not_shadowed(module: Any, name: str, spec: str) -> None:
    """Refuse a module of the current directory that a module imported before hides.

    ``stat:pipeline`` with a ``./stat.py`` imports nothing: the standard library's
    ``stat`` is imported already, and the error was that it has no ``pipeline``.
    """
    local = Path.cwd().joinpath(*name.split("."))
    for candidate in (local.with_name(local.name + ".py"), local / "__init__.py"):
        if not candidate.is_file():
            continue
        imported = getattr(module, "__file__", None)
        if imported is None or Path(imported).resolve() != candidate.resolve():
            raise UsageError(
                f"invalid target {spec!r}: the module name {name!r} is already taken by "
                f"{imported or 'a built-in module'}, so {candidate} is not imported; "
                "rename it"
            )
        return


def _import(name: str, spec: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            raise UsageError(f"invalid target {spec!r}: no module named {exc.name!r}") from None
        raise UsageError(_import_failed(name, spec, exc)) from None
    except SystemExit as exc:
        raise UsageError(
            f"invalid target {spec!r}: importing {name!r} called sys.exit({exc.code!r}); "
            'a script that runs something when executed needs an `if __name__ == "__main__":` '
            "guard to be usable as a target"
        ) from None
    except Exception as exc:
        raise UsageError(_import_failed(name, spec, exc)) from None


def _import_failed(name: str, spec: str, exc: BaseException) -> str:
    return f"invalid target {spec!r}: importing {name!r} failed:\n{_users_trace(exc)}"


def _users_trace(exc: BaseException) -> str:
    """``exc``'s traceback from the user's first frame on.

    Not this module's or the import machinery's frames above it: a dozen lines
    that say nothing about the user's error.
    """
    machinery = (__file__, importlib.__file__)
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename not in machinery and not filename.startswith("<frozen importlib"):
            break
        tb = tb.tb_next
    # None left (a SyntaxError: the error names the file and line itself): no frames.
    return "".join(traceback.format_exception(type(exc), exc, tb)).rstrip()
