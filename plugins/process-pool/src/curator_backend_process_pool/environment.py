"""Each worker's own environment: ``worker_env`` templates and thread-pool caps."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
"""Thread-pool sizes of the numerical libraries, capped per worker (as loky does)."""

MAX_VALUE_LENGTH = 128 * 1024
"""The longest environment value Linux passes to a new program (``MAX_ARG_STRLEN``)."""


def parse_worker_env(given: Mapping[str, str] | Sequence[str] | str) -> dict[str, str]:
    """``worker_env`` as ``{NAME: TEMPLATE}``, checked.

    A template may use the :class:`curator.WorkerInfo` fields ``{slot}``,
    ``{jobs}``, ``{pid}``, ``{host}`` and ``{backend}``.

    Raises
    ------
    ValueError
        For an entry that is not ``NAME=TEMPLATE`` or a template with another field.
    """
    if isinstance(given, str):
        given = (given,)
    if isinstance(given, Mapping):
        pairs = [(str(k), str(v)) for k, v in given.items()]
    else:
        pairs = []
        for entry in given:
            name, equals, template = str(entry).partition("=")
            if not equals:
                raise ValueError(f"worker_env entry {entry!r} is not NAME=TEMPLATE")
            pairs.append((name.strip(), template))
    for name, template in pairs:
        if not name or "=" in name or not name.replace("_", "a").isalnum():
            raise ValueError(f"worker_env: {name!r} is not an environment variable name")
        _check_widths(name, template)
        try:
            template.format(slot=0, jobs=1, pid=1, host="h", backend="b")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"worker_env {name}={template!r}: {exc!r} is not one of {{slot}}, {{jobs}}, "
                "{pid}, {host}, {backend} (write {{ and }} for braces)"
            ) from None
    return dict(pairs)


def _check_widths(name: str, template: str) -> None:
    """Refuse a format spec whose width would make a value no program can take.

    ``{slot:>99999999999}`` would otherwise be formatted into gigabytes (or
    fail with ``MemoryError``) in every worker.
    """
    import string  # here: the run's process checks; every worker imports this module

    try:
        specs = [spec for _, _, spec, _ in string.Formatter().parse(template) if spec]
    except ValueError:
        return  # malformed: formatting it says how
    for spec in specs:
        for number in re.findall(r"[0-9]+", spec):
            if int(number) > MAX_VALUE_LENGTH:
                raise ValueError(
                    f"worker_env {name}={template!r}: a width of {number} is more than an "
                    f"environment variable can hold ({MAX_VALUE_LENGTH} characters)"
                )
