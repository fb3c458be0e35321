"""Whether a plugin was built for this core: its ``curator-core`` requirement, checked.

A plugin distribution declares the core versions it works with
(``curator-core>=0.1,<1``). Before importing it, curator compares that range
with the installed core; a plugin built for another core is reported broken
with both versions named, and never imported (its code may not even load).
The check reads the distribution's metadata only and needs no third-party
library: the comparison operators of PEP 440 on release numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CORE_DISTRIBUTION = "curator-core"

_REQUIREMENT = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*"
    r"\(?(?P<spec>[^;()]*)\)?\s*(;(?P<marker>.*))?$"
)
_CLAUSE = re.compile(r"^\s*(~=|===|==|!=|<=|>=|<|>)\s*(\S+)\s*$")


def core_requirement(requires: Iterable[str] | None) -> str | None:
    """The version range a distribution's ``Requires-Dist`` lines give ``curator-core``.

    Returns ``None`` when it names none (or only under an extra).
    """
    for line in requires or ():
        match = _REQUIREMENT.match(line)
        if match is None:
            continue
        name = re.sub(r"[-_.]+", "-", match["name"]).lower()
        if name != CORE_DISTRIBUTION or "extra" in (match["marker"] or ""):
            continue
        return match["spec"].strip()
    return None


def satisfies(version: str, spec: str) -> bool:
    """Whether ``version`` lies in the comma-separated range ``spec`` (``>=0.1,<1``).

    Release numbers are compared; pre-release and local parts of ``version`` are
    ignored. A clause this function cannot read counts as satisfied: the check
    exists to name a clear mismatch, not to second-guess pip.
    """
    have = _release(version)
    for clause in filter(None, (part.strip() for part in spec.split(","))):
        match = _CLAUSE.match(clause)
        if match is None or not _release(match[2].rstrip(".*")):
            continue
        op, text = match[1], match[2]
        if not _holds(have, op, text):
            return False
    return True


def _holds(have: tuple[int, ...], op: str, text: str) -> bool:
    if text.endswith(".*"):  # == 1.2.* and != 1.2.*: a prefix match
        prefix = _release(text[:-2])
        inside = have[: len(prefix)] == prefix
        return inside if op == "==" else not inside if op == "!=" else True
    want = _release(text)
    width = max(len(have), len(want))
    a, b = have + (0,) * (width - len(have)), want + (0,) * (width - len(want))
    if op in ("==", "==="):
        return a == b
    if op == "!=":
        return a != b
    if op == ">=":
        return a >= b
    if op == "<=":
        return a <= b
    if op == ">":
        return a > b
    if op == "<":
        return a < b
    # ~= 1.4.2 means >= 1.4.2 and == 1.4.*
    return a >= b and have[: len(want) - 1] == want[: len(want) - 1]


def _release(version: str) -> tuple[int, ...]:
    match = re.match(r"^\s*v?(\d+(?:\.\d+)*)", version)
    return tuple(int(part) for part in match[1].split(".")) if match else ()
