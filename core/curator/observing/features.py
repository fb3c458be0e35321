"""Per-item features: plugins that measure or keep something for every item, in the worker.

An :class:`ItemFeature` runs around each item where the item runs (a worker
process, a thread, a Dask worker) and returns a small piece of JSON data for
it, which travels with the item's outcome under the feature's name: into
:attr:`curator.Outcome.extras`, the ``json`` reporter's ``task_finish``
events, the checkpoint (read back on ``--resume``, and by ``curator logs``)
and :attr:`curator.RunResult.outcomes`. The core carries these *extra
columns* without knowing what they mean, so a plugin adds a per-item field
without a change to curator or to any backend.

Plugins register feature classes through the ``curator_register_item_features``
hook. Every run makes one instance of each registered feature in the run's
process and ships it to the workers inside :class:`curator.Work`, once per
run, as it ships the pipeline: a feature must be picklable, and its state is
the worker's own copy. Disabling the plugin (``CURATOR_DISABLE_PLUGINS``,
``--no-plugins``) switches its feature off.

pluggy's ``wrapper=True`` hooks (pytest's capture and logging plugins) are
the model, but the per-item calls are plain method calls on objects gathered
once per run: a hook call through the plugin manager for every item would
cost more than a fast item itself.
"""

from __future__ import annotations

import contextlib
import functools
import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

_NAME = re.compile(r"[a-z][a-z0-9_]*\Z")


@functools.cache
def _json() -> tuple[Callable[[Any], str], Callable[[str], Any]]:
    """JSON's encoder and decoder, made on first use: most workers never need them."""
    import json

    encoder = json.JSONEncoder(allow_nan=False, separators=(",", ":"))
    return encoder.encode, json.JSONDecoder().decode


def as_json(value: Any) -> Any:
    """``value`` as it reads back from JSON (a tuple is a list, a number key is text).

    Plain data (text, numbers, booleans, ``None``, dicts with text keys, lists)
    is checked and copied in Python, which for the small records of per-item
    features costs a fraction of what a trip through :mod:`json` does; anything
    else takes that trip, so the result is exactly what JSON would give.

    Raises
    ------
    ValueError, TypeError
        When ``value`` is not JSON (a set, an object, ``NaN``, a cycle).
    """
    kind = type(value)
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is float:
        if value - value != 0.0:  # NaN or an infinity, which JSON does not have
            raise ValueError(f"{value!r} is not JSON (allow_nan is off)")
        return value
    if kind is dict and all(type(key) is str for key in value):
        return {key: as_json(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [as_json(item) for item in value]
    encode, decode = _json()
    return decode(encode(value))


class ItemFeature:
    """Something done around every item where it runs; subclass it in a plugin.

    :meth:`begin` is called right before the item's stages run and
    :meth:`end` right after (also when the item raised), on the worker's copy
    of the feature. A worker that runs items in threads shares one copy
    between its threads: keep what belongs to one item in the token
    :meth:`begin` returns, not on ``self``.

    Attributes
    ----------
    name
        The key of the feature's data in :attr:`curator.Outcome.extras`:
        lowercase letters, digits and underscores, starting with a letter;
        unique among the installed features.
    description
        One line for ``curator plugins list``.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""

    def begin(self, index: int) -> Any:
        """Called where the item runs, right before it; returns a token for :meth:`end`.

        What it raises fails the item, with this feature named.
        """
        return None

    def end(self, index: int, token: Any, ok: bool) -> Any:
        """Called right after the item; returns its data for the item, or ``None``.

        ``ok``: the item's stages ran to the end without raising (its outcome
        can still fail afterwards, when its value cannot be sent or stored).
        It is called for every item :meth:`begin` was called for: with ``ok``
        false also when the item raised, when a later feature's ``begin``
        raised, or when a hard stop ended the item (then what it returns is
        not kept).

        The data must be JSON (dicts with text keys, lists, text, numbers,
        booleans, ``None``): it is stored in the checkpoint and written into
        JSON events. ``None`` records nothing for the item. What it raises,
        or data that is not JSON, fails the item, with this feature named.
        """
        return None

    def __deepcopy__(self, memo: dict[int, Any]) -> ItemFeature:
        """The feature itself: the threads of a backend that copies the work share it.

        (The thread pool copies the pipeline per thread by default; a feature
        may hold a lock to guard what its threads share.)
        """
        return self

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """Why the feature cannot run in this environment, or ``None`` when it can."""
        return None


class CoreFeature(ItemFeature):
    """A per-item feature whose work the core does itself, in :class:`curator.Work`.

    Capture and metrics (:mod:`curator.observing.builtin`): registered, listed and
    switched off by name as any feature, but not called through
    :meth:`~ItemFeature.begin`/:meth:`~ItemFeature.end`.
    """


def feature_problems(cls: type[ItemFeature]) -> list[str]:
    """What is wrong with a registered feature class (empty when nothing is)."""
    problems = []
    if not _NAME.match(cls.name):
        problems.append(
            f"its name {cls.name!r} is not lowercase letters, digits and underscores "
            "starting with a letter"
        )
    for method in ("begin", "end"):
        if not callable(getattr(cls, method, None)):
            problems.append(f"{method} is not a method")
    return problems


class FeatureError(Exception):
    """A per-item feature failed around an item: the item fails with it."""


def run_features(
    features: Sequence[ItemFeature], tokens: Sequence[Any], index: int, ok: bool
) -> dict[str, Any] | None:
    """Each feature's data for the item that just ran (``None``: none has any).

    Every feature that began gets its :meth:`~ItemFeature.end`, also when an
    earlier one's raised; the first failure is raised after all of them ended.

    Raises
    ------
    FeatureError
        Naming the feature whose :meth:`~ItemFeature.end` raised or gave data
        that is not JSON.
    """
    extras: dict[str, Any] | None = None
    failure: FeatureError | None = None
    for feature, token in zip(features, tokens, strict=True):
        try:
            data = feature.end(index, token, ok)
            if data is not None:
                # As JSON reads it back: the data reads the same live, from events and
                # from the checkpoint (a tuple is a list, a number key is text, everywhere).
                data = as_json(data)
        except Exception as exc:
            if failure is None:
                failure = FeatureError(
                    f"the per-item feature {feature.name!r} failed after the item: "
                    f"{type(exc).__name__}: {exc}"
                )
                failure.__cause__ = exc
            continue
        if data is not None:
            if extras is None:
                extras = {}
            extras[feature.name] = data
    if failure is not None:
        raise failure
    return extras


def end_quietly(features: Sequence[ItemFeature], tokens: Sequence[Any], index: int) -> None:
    """End the features that began (``ok`` false) when the item will not end normally.

    For an item whose later feature failed to begin, or that a hard stop
    ended: what the features return, or raise, is not kept.
    """
    for feature, token in zip(features, tokens, strict=False):  # those that began
        # The item fails (or the run stops) for another reason already.
        with contextlib.suppress(Exception):
            feature.end(index, token, False)


def begin_features(features: tuple[ItemFeature, ...], index: int) -> list[Any]:
    """Each feature's token for the item about to run.

    When one raises, those that began before it are ended (:func:`end_quietly`).

    Raises
    ------
    FeatureError
        Naming the feature whose :meth:`~ItemFeature.begin` raised.
    """
    tokens: list[Any] = []
    for feature in features:
        try:
            tokens.append(feature.begin(index))
        except Exception as exc:
            end_quietly(features, tokens, index)
            raise FeatureError(
                f"the per-item feature {feature.name!r} failed before the item: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    return tokens
