"""Value classes without :mod:`dataclasses`, for what every worker imports.

A worker's start is on the critical path of every short run. ``dataclasses``
imports :mod:`inspect` (and with it ``ast``, ``dis`` and ``tokenize``) and
writes each class's methods with ``exec``: for the nine classes a worker
needs, about 12 ms of a fork server's start, more than the rest of curator's
worker imports. Those classes therefore declare ``__slots__`` (their fields,
in order) and a hand-written ``__init__``; :class:`Record` and
:class:`FrozenRecord` give them what ``@dataclass`` would give besides:
``repr``, ``==``, pickling and copying, and for a frozen record a hash and
assignment that raises. Classes the workers do not import stay dataclasses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a TypeVar bound by name compiles the name: 1 ms of every worker's start
    from typing import TypeVar

    _R = TypeVar("_R", bound="Record")


class Record:
    """Fields in ``__slots__`` order; ``repr``, ``==`` and pickling by those fields.

    Like a ``@dataclass(slots=True)``: two records are equal when they are of
    the same class and their fields are equal, and a mutable record has no hash.
    ``__init__`` must accept every field by position, in ``__slots__`` order.
    """

    __slots__ = ()
    _fields: tuple[str, ...] = ()
    """The fields, in the order ``__init__`` takes them (each class's ``__slots__``)."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        # ``case Outcome(index, status):`` as with a dataclass
        setattr(cls, "__match_args__", cls._fields)  # noqa: B010 - mypy refuses the assignment

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields)

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self._fields)
        return f"{type(self).__qualname__}({fields})"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self) or not isinstance(other, Record):
            return NotImplemented
        return self._values() == other._values()

    __hash__ = None  # type: ignore[assignment]  # mutable, as a dataclass with eq

    def replace(self: _R, **changes: Any) -> _R:
        """A copy with ``changes`` (field name -> value), as :func:`dataclasses.replace` makes."""
        fields = {name: getattr(self, name) for name in self._fields}
        fields.update(changes)
        return type(self)(**fields)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self._values())

    def __setstate__(self, state: Any) -> None:
        """Read a pickle written while these classes were dataclasses.

        A frozen slotted dataclass pickled its fields as a list, a plain one
        its ``__dict__``, a slotted one ``(None, {field: value})``. Pickles
        made now go through ``__init__`` (:meth:`__reduce__`), never here.
        """
        if isinstance(state, tuple) and len(state) == 2:
            fields = {**(state[0] or {}), **(state[1] or {})}
        elif isinstance(state, dict):
            fields = state
        else:
            fields = dict(zip(self._fields, state, strict=False))  # older: fewer fields
        for name, value in fields.items():
            object.__setattr__(self, name, value)


class FrozenRecord(Record):
    """A :class:`Record` whose fields cannot be set after ``__init__``, with a hash.

    ``__init__`` sets its fields with :meth:`_set`.
    """

    __slots__ = ()

    def _set(self, *values: Any) -> None:
        """Set every field, in ``_fields`` order (past the assignment that raises)."""
        for name, value in zip(self._fields, values, strict=True):
            object.__setattr__(self, name, value)

    def __hash__(self) -> int:  # type: ignore[override]  # Record: None, as mutable
        return hash(self._values())

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of a {type(self).__qualname__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of a {type(self).__qualname__}")
